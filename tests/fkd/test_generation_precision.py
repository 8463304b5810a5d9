"""FKD label generation precision (mmkd_ext/fkd/generation.py): bf16/fp16 teacher autocast, channels_last,
the manifest record of both, and the stored labels' difference to an fp32 teacher."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from benchmarks.fkd_common import calibrated_checkpoint
from mmkd_ext.fkd.generation import (
    GenerationSettings,
    build_teachers,
    compare_with_fp32,
    generate_labels,
    teacher_probs,
)
from mmkd_ext.fkd.store import LabelStore, LabelStoreError
from mmkd_ext.registry import DATASETS

from .fkd_helpers import LABEL_CONFIG, N_IMAGES, label_config, one_thread

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BF16_TOLERANCE = 0.05  # max |p_bf16 - p_fp32| of a label: bf16 keeps 8 mantissa bits (relative error 2^-8 per op)


def quiet(*_):
    pass


@pytest.fixture(scope='module')
def confident_teacher(tmp_path_factory, digits_root):
    """The digits resnet20 teacher, BN statistics calibrated on 64 training images, logits spread like a trained
    teacher's (std 3 over the 10 classes): random weights alone give near-uniform probabilities."""
    cfg = Config.fromfile(LABEL_CONFIG)
    data = DATASETS.build(label_config('unused', None, n_images=64).label_dataset.to_dict())
    path = str(tmp_path_factory.mktemp('confident') / 'teacher.pth')
    with one_thread():
        return calibrated_checkpoint(cfg.teachers[0].model.to_dict(), np.stack([data[i]['img'] for i in range(64)]),
                                     path, logit_std=3.0)


@pytest.fixture(scope='module')
def fp32_store(tmp_path_factory, confident_teacher):
    root = tmp_path_factory.mktemp('fp32') / 'store'
    with one_thread():
        generate_labels(label_config(root, confident_teacher), progress=False, log=quiet)
    return str(root)


def stored_labels(store_dir):
    store = LabelStore(store_dir)
    return torch.cat([store.soft_labels(i, np.arange(store.num_crops)) for i in range(len(store))])


def test_unknown_amp_is_refused():
    with pytest.raises(ValueError, match=r"amp must be one of \('none', 'bf16', 'fp16'\).*'fp8'"):
        GenerationSettings.from_cfg(dict(store_dir='unused', amp='fp8'))


def test_fp16_on_cpu_is_refused_before_anything_is_written(tmp_path, teacher_ckpt):
    cfg = label_config(tmp_path / 'store', teacher_ckpt, amp='fp16', device='cpu')
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device.*'cpu'.*amp='bf16'"):
        generate_labels(cfg, progress=False, log=quiet)
    assert not (tmp_path / 'store').exists()


def test_confident_teacher_is_not_near_uniform(fp32_store):
    # guards the tolerance test below: near-uniform labels would make any precision look exact
    assert stored_labels(fp32_store).max(dim=1).values.mean() > 0.5


def test_bf16_labels_are_within_tolerance_of_fp32(tmp_path, fp32_store, confident_teacher):
    generate_labels(label_config(tmp_path / 'bf16', confident_teacher, amp='bf16'), progress=False, log=quiet)
    fp32, bf16 = stored_labels(fp32_store), stored_labels(str(tmp_path / 'bf16'))
    diff = (bf16 - fp32).abs().max().item()
    assert 0 < diff < BF16_TOLERANCE  # > 0: the teacher really ran in bf16
    assert (bf16.argmax(1) == fp32.argmax(1)).float().mean() >= 0.9
    # the tool's check (fp32 recomputed on the fly) measures the same difference as the two stores
    report = compare_with_fp32(label_config(tmp_path / 'bf16', confident_teacher, amp='bf16'), N_IMAGES)
    assert report.crops == fp32.shape[0] and report.precision == dict(amp='bf16', channels_last=False)
    assert report.max_abs == pytest.approx(diff, abs=2e-3)


def test_fp32_store_compares_equal_to_fp32(fp32_store, confident_teacher):
    report = compare_with_fp32(label_config(fp32_store, confident_teacher), 4)
    assert report.images == 4 and report.max_abs < 2e-3 and report.top1_agreement == 1.0  # fp16 rounding only


def test_softmax_stays_fp32_under_bf16_autocast(confident_teacher):
    teacher = build_teachers(label_config('unused', confident_teacher).teachers, torch.device('cpu'))
    crops = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    probs = teacher_probs(teacher, crops, temperature=1.0, amp='bf16')
    assert probs.dtype == torch.float32
    assert torch.allclose(probs.sum(dim=1), torch.ones(6), atol=1e-6)  # a bf16 softmax sums to 1 +- ~1e-3


def test_channels_last_feeds_nhwc_and_keeps_fp32_labels(confident_teacher):
    cfg = label_config('unused', confident_teacher)
    plain = build_teachers(cfg.teachers, torch.device('cpu'))
    nhwc = build_teachers(cfg.teachers, torch.device('cpu'), channels_last=True)
    first_conv = next(m for m in nhwc[0].modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    first_conv.register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    crops = np.random.default_rng(1).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    got = teacher_probs(nhwc, crops, 1.0, channels_last=True)
    assert seen == [True]
    assert torch.allclose(got, teacher_probs(plain, crops, 1.0), atol=1e-5)


def test_resume_in_another_precision_is_refused(tmp_path, teacher_ckpt):
    generate_labels(label_config(tmp_path / 'store', teacher_ckpt), stop_after=1, progress=False, log=quiet)
    with pytest.raises(LabelStoreError, match="teacher.*'amp': 'none'.*'amp': 'bf16'"):
        generate_labels(label_config(tmp_path / 'store', teacher_ckpt, amp='bf16'), progress=False, log=quiet)


def run_tool(argv):
    """``tools/fkd/generate_labels.py`` main() in this process (a subprocess spends ~20 s importing here)."""
    path = osp.join(ROOT, 'tools/fkd/generate_labels.py')
    spec = importlib.util.spec_from_file_location('generate_labels_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(argv)


def test_tool_options_reach_the_store_and_compare_prints_the_difference(tmp_path, confident_teacher, capsys):
    store = tmp_path / 'store'
    opts = ['--cfg-options', f'teachers.0.checkpoint={confident_teacher}', 'label_dataset.indices=4',
            f'fkd_generation.store_dir={store}', 'fkd_generation.num_crops=2', 'fkd_generation.images_per_batch=2',
            'fkd_generation.shard_size=4']
    run_tool([LABEL_CONFIG, *opts, '--no-progress', '--amp', 'bf16', '--channels-last', '--compare-fp32', '3'])
    out = capsys.readouterr().out
    assert LabelStore(str(store)).manifest['teacher']['precision'] == dict(amp='bf16', channels_last=True)
    assert 'amp=bf16, channels_last=True' in out
    assert 'vs fp32 teacher on 6 crops of 3 images: max |difference|' in out


def test_tool_refuses_fp16_on_cpu(tmp_path, teacher_ckpt):
    opts = ['--cfg-options', f'teachers.0.checkpoint={teacher_ckpt}', f'fkd_generation.store_dir={tmp_path}/s',
            'fkd_generation.device=cpu']
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA device"):
        run_tool([LABEL_CONFIG, *opts, '--amp', 'fp16'])
