"""The fake-CUDA device check (mmkd_ext/device_check, issue 23): CPU tensors mixed into a CUDA step are caught on a
machine without a GPU, naming the module and the line; what the device allows passes."""
import inspect
import os.path as osp
import time

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.model import BaseModel
from torch import nn

from mmkd_ext.device_check import (
    FakeCudaCheckHook,
    FakeCudaDeviceError,
    coverage_line,
    coverage_report,
    fake_cuda_train_step,
    read_records,
)
from mmkd_ext.registry import HOOKS, MODELS

KD_DIGITS = osp.join(ROOT, 'configs', 'kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')
RETINA_SHAPES = osp.join(ROOT, 'configs', 'kd', 'cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py')


def _line_of(func, text: str) -> int:
    """Line number of the first line of ``func``'s source containing ``text``."""
    lines, first = inspect.getsourcelines(func)
    return first + next(i for i, line in enumerate(lines) if text in line)


class Rows(nn.Module):
    """Rows ``[0, 2]`` of a (4, 3) weight, the index kept as ``keep``: ``'buffer'`` (moves with ``.to``),
    ``'attribute'`` (a plain python attribute), ``'closure'`` (an instance ``forward`` closing over it and the
    module, as AMD's ``SlicedCandidates`` did) or ``'closure_buffer'`` (an instance ``forward`` closing over the
    module only, the index a buffer)."""

    def __init__(self, keep: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.arange(12.).view(4, 3))
        idx = torch.tensor([0, 2])
        if keep in ('buffer', 'closure_buffer'):
            self.register_buffer('idx', idx)
        elif keep == 'attribute':
            self.idx = idx
        if keep.startswith('closure'):
            self.forward = _closure_of_buffer(self) if keep == 'closure_buffer' else _rows_closure(self, idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.index_select(0, self.idx).t()


def _rows_closure(module: Rows, idx: torch.Tensor):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x @ module.weight.index_select(0, idx).t()
    return forward


def _closure_of_buffer(module: Rows):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x @ module.weight.index_select(0, module.idx).t()
    return forward


class Tiny(BaseModel):
    """``linear`` (2 -> 3), then ``rows``; the loss is the mean output times a 0-dim CPU scalar."""

    def __init__(self, keep: str) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.rows = Rows(keep)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.rows(self.linear(inputs)).mean() * torch.tensor(0.5))


def _batch():
    return dict(inputs=torch.ones(4, 2))


@pytest.mark.parametrize('keep', ['attribute', 'closure'])
def test_cpu_index_outside_buffers_is_caught_with_module_and_line(keep):
    model = Tiny(keep)
    with pytest.raises(FakeCudaDeviceError) as info:
        fake_cuda_train_step(model, _batch())
    op = Rows.forward if keep == 'attribute' else _rows_closure
    line = _line_of(op, 'index_select')
    assert info.value.module == 'rows'
    assert info.value.location == f'tests/test_fake_cuda.py:{line} (forward)'
    assert isinstance(info.value, RuntimeError)
    assert str(info.value).startswith(
        'Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!')


@pytest.mark.parametrize('keep', ['buffer', 'closure_buffer'])
def test_index_in_a_buffer_and_0dim_cpu_scalars_pass(keep):
    """With ``'closure_buffer'`` this also shows the copy's closures use the copy's (fake CUDA) module: the
    original module's weight is a real CPU tensor and would meet the CUDA input."""
    report = fake_cuda_train_step(Tiny(keep), _batch())
    assert report.status == 'checked' and report.partial is None
    assert report.losses == {'loss': 'cuda:0'}
    assert report.modules_checked == report.modules_run == 4  # the model, its data preprocessor, linear, rows


def test_real_model_is_unchanged_and_on_cpu():
    model = Tiny('closure')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FakeCudaDeviceError):
        fake_cuda_train_step(model, _batch())
    passing = Tiny('buffer')
    torch.manual_seed(3)
    expected_draw = torch.rand(1)
    torch.manual_seed(3)
    fake_cuda_train_step(passing, _batch())
    assert torch.equal(torch.rand(1), expected_draw)  # no random stream advanced
    for k, v in model.state_dict().items():
        assert type(v) is torch.Tensor and v.device.type == 'cpu' and torch.equal(v, before[k]), k
    assert all(type(p) is nn.Parameter and p.grad is None for p in model.parameters())
    assert model.data_preprocessor._device == torch.device('cpu')
    assert torch.equal(model.rows(torch.eye(3)), torch.tensor([[0., 6.], [1., 7.], [2., 8.]]))  # rows 0, 2 of W


class CpuBookkeeping(BaseModel):
    """Counts kept rows on a CPU mask in Python (as AMD's FLOPs solver does) before using the count."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        kept = int(torch.tensor([True, False, True]).sum())  # a real CPU value on a GPU machine too
        return dict(loss=self.linear(inputs)[:, :kept].mean())


def test_python_values_of_cpu_tensors_are_real():
    """Plain ``FakeTensorMode`` would fake the CPU mask too and stop at ``int()`` (data-dependent)."""
    report = fake_cuda_train_step(CpuBookkeeping(), _batch())
    assert report.status == 'checked' and report.losses == {'loss': 'cuda:0'}


class DataDependent(BaseModel):
    """``head`` branches on a value (``if (x > 0).any()``) after ``stem``; ``loss_layer`` runs after it."""

    def __init__(self, idx_in_attribute: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(2, 3)
        self.head = Branching()
        self.loss_layer = Rows('attribute' if idx_in_attribute else 'buffer')

    def forward(self, inputs, data_samples=None, mode='tensor'):
        h = self.head(self.stem(inputs))
        return dict(loss=self.loss_layer(h).mean())


class Branching(nn.Module):
    def forward(self, x):
        if (x > 0).any():
            return x.relu()
        return x


def test_data_dependent_branch_is_partial_and_the_rest_is_replayed():
    report = fake_cuda_train_step(DataDependent(), _batch())
    line = _line_of(Branching.forward, 'if (x > 0)')
    assert report.status == 'partial'
    assert report.partial == ('data-dependent op a Python branch/conversion on a data-dependent value '
                              f'(`if (x > 0).any():`) at head, tests/test_fake_cuda.py:{line} (forward)')
    assert report.replayed == ['loss_layer']  # stem finished on fake CUDA before the branch
    assert report.not_checked == ['<model>', 'head']
    assert (report.modules_checked, report.modules_run) == (3, 5)  # + the data preprocessor


def test_replay_still_catches_a_cpu_index_after_the_data_dependent_op():
    with pytest.raises(FakeCudaDeviceError) as info:
        fake_cuda_train_step(DataDependent(idx_in_attribute=True), _batch())
    assert info.value.module == 'loss_layer'


# ------------------------------------------------------------------------------------------------ real models


def test_hook_is_registered():
    assert HOOKS.get('FakeCudaCheckHook') is FakeCudaCheckHook


@pytest.fixture
def digits_kd_cfg(digits_root, tmp_path):
    cfg = Config.fromfile(KD_DIGITS)
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = f'fake_cuda_{time.time_ns()}'
    cfg.model.teacher_ckpt = None  # a random teacher: the test is about devices
    cfg.train_dataloader.batch_size = 4
    cfg.log_level = 'WARNING'
    return cfg


def test_digits_kd_distiller_passes(digits_kd_cfg):
    from mmengine.runner import Runner
    torch.manual_seed(0)
    model = MODELS.build(digits_kd_cfg.model)
    model.train()  # (MMRazor's train() returns None)
    batch = next(iter(Runner.build_dataloader(digits_kd_cfg.train_dataloader)))
    report = fake_cuda_train_step(model, batch)
    assert report.status == 'checked'
    assert set(report.losses.values()) == {'cuda:0'} and len(report.losses) >= 2  # student CE + the KD loss
    assert report.modules_checked == report.modules_run > 20  # both ResNets, distiller and its loss


def test_runner_with_injected_hook_records_each_epoch(digits_kd_cfg):
    from mmengine.runner import Runner

    from mmkd_ext.device_check import RECORDS
    cfg = digits_kd_cfg
    cfg.train_dataloader.dataset.indices = 8  # 2 iterations of 4 per epoch
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.custom_hooks = [dict(type='FakeCudaCheckHook')]
    n_before = len(RECORDS)
    Runner.from_cfg(cfg).train()
    records = read_records(cfg.work_dir)
    assert [(r['epoch'], r['iter'], r['status']) for r in records] == [(0, 0, 'checked'), (1, 2, 'checked')]
    assert RECORDS[n_before:] == records
    assert records[0]['config'] == osp.relpath(KD_DIGITS)
    assert coverage_line(records, total=3) == 'fake-CUDA device check: covered 1 / 3 configs'


@pytest.mark.parametrize('other_errors', ['raise', 'record'])
def test_hook_records_or_raises_an_error_that_is_no_device_error(digits_kd_cfg, monkeypatch, other_errors):
    """The config check over every config records an error fake tensors cannot run (the real step runs right after
    and is what the check is about); used by hand, the hook raises it. A device error raises either way."""
    from mmengine.runner import Runner

    from mmkd_ext.device_check import hook as hook_module

    def no_fake_kernel(model, data_batch, replay=True):
        raise NotImplementedError('no fake kernel for op x')
    monkeypatch.setattr(hook_module, 'fake_cuda_train_step', no_fake_kernel)
    cfg = digits_kd_cfg
    cfg.train_dataloader.dataset.indices = 4
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.custom_hooks = [dict(type='FakeCudaCheckHook', other_errors=other_errors)]
    runner = Runner.from_cfg(cfg)
    if other_errors == 'raise':
        with pytest.raises(NotImplementedError, match='no fake kernel for op x'):
            runner.train()
        assert read_records(cfg.work_dir) == []
        return
    runner.train()
    assert runner.iter == 1  # the real step ran
    (record,) = read_records(cfg.work_dir)
    assert record['status'] == 'partial'
    assert record['partial'].startswith('fake tensors cannot run the step: NotImplementedError: no fake kernel for '
                                        'op x at ')
    lines = coverage_report([dict(record, config='k.py'), dict(config='f.py', status='failed', module='m',
                                                                 location='a.py:3')], total=3)
    assert lines[0] == 'fake-CUDA device check: covered 2 / 3 configs: 0 in full, 2 partially or failed'
    assert lines[1] == '  FAILED f.py: m at a.py:3'
    assert lines[2].startswith('  partial k.py (0/1 checks in full): fake tensors cannot run the step: ')


def test_hook_refuses_an_unknown_other_errors_value():
    with pytest.raises(ValueError, match="other_errors must be 'raise' or 'record'"):
        FakeCudaCheckHook(other_errors='ignore')


def test_coverage_line_names_partial_and_failed_configs():
    records = [dict(config='a.py', status='checked'), dict(config='b.py', status='partial', partial='op x'),
               dict(config='b.py', status='checked'), dict(config='c.py', status='failed')]
    assert coverage_line(records, total=4) == ('fake-CUDA device check: covered 3 / 4 configs '
                                               "(partial: b.py: op x; failed: ['c.py'])")


def test_detector_stops_at_the_anchor_assignment_and_replays_the_distillation_losses(shapes_root):
    """RetinaNet (CWD on FPN, shapes demo): the student's target assignment branches on ``inside_flags.any()``; the
    teacher, both backbones/necks and the student head run on fake CUDA, the classification loss and the four CWD
    losses are replayed; the smooth-L1 loss branches on its weights (mmdet 3.3.0 line numbers)."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    cfg = Config.fromfile(RETINA_SHAPES)
    cfg.model.teacher_ckpt = None
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    loader = dict(cfg.train_dataloader, batch_size=2, num_workers=0, persistent_workers=False)
    report = fake_cuda_train_step(model, next(iter(Runner.build_dataloader(loader))))
    assert report.status == 'partial' and report.preprocessor == 'fake CUDA'
    assert report.partial == ('data-dependent op a Python branch/conversion on a data-dependent value '
                              '(`if not inside_flags.any():`) at architecture, '
                              'mmdet/models/dense_heads/anchor_head.py:243 (_get_targets_single)')
    assert report.replayed == ['architecture.bbox_head.loss_cls'] + [
        f'distiller.distill_losses.loss_cwd_fpn{i}' for i in range(4)]
    assert report.replay_stopped == {'architecture.bbox_head.loss_bbox': (
        'GuardOnDataDependentSymNode at mmdet/models/losses/smooth_l1_loss.py:156 (forward): '
        'if weight is not None and not torch.any(weight > 0):')}
    assert report.not_checked == ['<model>', 'architecture', 'architecture.bbox_head.loss_bbox']
    assert report.modules_run - report.modules_checked == 3


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain', 'mmrazor'])
def test_hook_is_found_from_every_default_scope(scope):
    """The config check injects the hook into configs whose default scope is mmdet / mmseg / mmpretrain: registered
    in MMRazor's registry only, it was 'not in the mmdet::hook registry' there."""
    import importlib
    registry = importlib.import_module(f'{scope}.registry').HOOKS
    hook = registry.build(dict(type='FakeCudaCheckHook', other_errors='record'))
    assert isinstance(hook, FakeCudaCheckHook) and hook.other_errors == 'record'
