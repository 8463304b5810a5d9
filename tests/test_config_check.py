"""Every shipped config runs end to end on stand-in data (tools/misc/check_config.py --shrink), in CI.

One test per file in configs/ (``_base_`` fragments aside): build, train, val with the real metric, checkpoint,
resume and tools/test.py, or the config's own tool (FKD labels -> training, KD-Zero search -> best config, AMD
pipeline -> export -> test, ACMKD training -> student export: the rooms' run plans, mmkd_ext/run_plans.py).
A config that cannot run fails here.
"""
import gc
import glob
import json
import os.path as osp

import pytest
from conftest import ROOT
from mmengine.config import Config

from mmkd_ext.amd.plan import limit_importance_samples
from mmkd_ext.config_check import (
    CheckReport,
    StepRecord,
    check_config,
    checkpoint_files,
    limit_train_iterations,
    record_times,
    render_times_table,
    shrink,
)
from mmkd_ext.device_check import read_records

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if f'{osp.sep}_base_{osp.sep}' not in p)


def test_every_config_is_checked():
    assert len(CONFIGS) >= 69


def test_shrink_scales_the_top_level_data_preprocessor_the_runner_hands_to_the_model():
    """mmseg bases pad every batch to the top-level ``data_preprocessor.size``; an algorithm model that sets none
    gets it from MMEngine's Runner. Unscaled, the check trained DeepLabV3-R101 on 512x1024 padding (15 min)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'amd',
                                   'amd_deeplabv3-r101_deeplabv3-r101-p15_4xb2-80k_cityscapes-512x1024.py'))
    assert 'data_preprocessor' not in cfg.model and tuple(cfg.data_preprocessor.size) == (512, 1024)
    shrink(cfg)
    assert tuple(cfg.data_preprocessor.size) == (32, 64)  # 128 / 2048 of the 512 x 1024 crop
    assert tuple(cfg.model.architecture.data_preprocessor.size) == (32, 64)
    assert tuple(cfg.model.pruner.input_shape) == (3, 32, 64)


def test_shrink_scales_a_search_proxys_fitness_images_like_its_base_config():
    """A search config has no loaders of its own; its proxy's fitness loader kept ImageNet's 224 px crops (and
    Cityscapes' 2048x1024 before that config held out training images: an 8-minute check) while the base config's
    images were shrunk."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'kd_zero', 'search_kd_zero_resnet34_resnet18_in1k-subset.py'))
    base = Config.fromfile(cfg.base_config)
    assert 'x0.250' in shrink(cfg) and 'x0.250' in shrink(base)
    fitness = {t['type']: t for t in cfg.proxy.fitness_dataloader.dataset.pipeline}
    test = {t['type']: t for t in base.test_dataloader.dataset.pipeline}
    assert fitness['ResizeEdge']['scale'] == test['ResizeEdge']['scale'] == 64
    assert fitness['CenterCrop']['crop_size'] == test['CenterCrop']['crop_size'] == 64


def test_amd_checks_estimate_importance_on_a_few_shrunk_images():
    """AMD's importance loader (2048 per-example gradients at 224 px) was neither shrunk nor shortened: the ViT-B
    check spent most of its 7 minutes there."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'amd', 'amd_vit-base_vit-base-p15_16xb8-100e_cifar100.py'))
    shrink(cfg)
    resize = [t for t in cfg.amd.importance.dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    train_resize = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert resize['scale'] == train_resize['scale'] == 64
    limit_importance_samples(cfg.amd, 4)
    assert cfg.amd.importance.max_samples == 4 and cfg.amd.importance.dataloader.batch_size == 2
    assert cfg.amd.importance.criterion == 'gradient'


def test_a_phase_beginning_after_the_shortened_schedule_begins_at_zero():
    """mmpretrain's ShuffleNetV2 schedule (MMRazor's KD ResNet-50 -> ShuffleNetV2 config) warms up for 5000
    iterations, then ``PolyLR(by_epoch=False, begin=5000)`` without ``end``: MMEngine ends it with the shortened
    schedule, and ``begin=5000 >= end=2`` was an error at the train step."""
    cfg = Config.fromfile('mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py')
    assert [p.get('begin', 0) for p in cfg.param_scheduler] == [0, 5000]
    note = limit_train_iterations(cfg, 2)
    assert [p.get('begin', 0) for p in cfg.param_scheduler] == [0, 0] and 'PolyLR(begin=5000) begin at 0' in note
    assert cfg.param_scheduler[0].end == 5000  # a phase that starts in time keeps its bounds


def test_the_times_table_lists_steps_in_the_order_they_ran_and_the_total(tmp_path):
    """The README table is generated from the recorded times; JSON's sort_keys once listed steps alphabetically."""
    path = str(tmp_path / 'times.json')
    steps = [('search', 30.0), ('build', 2.0), ('train', 5.0), ('val', 1.0), ('checkpoint', 0.5), ('resume', 3.0),
             ('test', 1.5)]
    record_times(CheckReport('configs/kd_zero/search_x.py', [StepRecord(n, t, 0.0) for n, t in steps]), path)
    record_times(CheckReport('configs/amd/amd_y.py', [StepRecord('pipeline', 60.0, 0.0), StepRecord('test', 2.0, 0.0)]),
                 path)
    table = render_times_table(path).splitlines()
    assert table[2] == '| `configs/amd/amd_y.py` | pipeline > test | 62 |'
    assert table[3] == ('| `configs/kd_zero/search_x.py` | search > build > train > val > checkpoint > resume > test '
                        '| 43 |')
    assert table[4] == '| **2 configs** | | **105** |'


# the fake-CUDA device check (issue 23) inside every run each config's plan makes: a CPU tensor meeting a CUDA one
# fails the check naming module and line; where fake tensors cannot run a step the record says why (conftest prints
# the coverage at the end of the session)
FAKE_CUDA_HOOK = dict(type='FakeCudaCheckHook', other_errors='record')
FAKE_CUDA_PROPERTY = 'fake_cuda_records'


def fake_cuda_records(work_dir: str, config: str) -> list:
    """The fake-CUDA checks of every run under ``work_dir``, each labelled with the shipped ``config`` and its run."""
    records = []
    for path in sorted(glob.glob(osp.join(work_dir, '**', 'fake_cuda_check.jsonl'), recursive=True)):
        run = osp.relpath(osp.dirname(path), work_dir)
        records += [dict(r, config=config, run=run) for r in read_records(osp.dirname(path))]
    return records


@pytest.mark.timeout(900)  # the AMD ViT-B / Swin-T / DeepLabV3-R101 pipelines: ~2-5 min each, more on a loaded machine
@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS])
def test_config_runs_end_to_end_on_standin_data(path, tmp_path, record_property):
    report = check_config(path, str(tmp_path / 'check'), shrink_inputs=True, extra_hooks=[FAKE_CUDA_HOOK])
    records = fake_cuda_records(str(tmp_path / 'check'), osp.relpath(path, ROOT))
    assert records, 'the fake-CUDA device check ran in none of the runs of the check'
    record_property(FAKE_CUDA_PROPERTY, json.dumps(records))
    names = [s.name for s in report.steps]
    assert 'test' in names and names[-1] in ('test', 'export'), names  # ACMKD's export stage follows its training
    assert not checkpoint_files(str(tmp_path)), 'the check leaves its checkpoints behind (they fill the CI disk)'
    record_times(report)  # tools/misc/check_config.py --table renders them for the README
    gc.collect()


def test_keep_checkpoints_keeps_what_the_check_wrote_and_the_default_deletes_it(tmp_path, capsys):
    """tools/misc/check_config.py deletes a check's checkpoints at its end (CI ran out of disk with them: 37 GB over
    the config and zoo checks) and keeps them with --keep-checkpoints."""
    import importlib.util
    tool_path = osp.join(ROOT, 'tools', 'misc', 'check_config.py')
    spec = importlib.util.spec_from_file_location('check_config_tool', tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = osp.join(ROOT, 'configs', 'kd', 'resnet8x0.5_1xb32-30e_digits.py')
    assert tool.main([config, '--shrink', '--work-dir', str(tmp_path / 'kept'), '--keep-checkpoints']) == 0
    kept = checkpoint_files(str(tmp_path / 'kept'))
    assert any(osp.basename(p).startswith('epoch_') for p in kept), kept
    assert tool.main([config, '--shrink', '--work-dir', str(tmp_path / 'deleted')]) == 0
    assert checkpoint_files(str(tmp_path / 'deleted')) == []
    assert 'deleted' in capsys.readouterr().out
