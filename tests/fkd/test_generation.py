"""FKD label generation (mmkd_ext/fkd/generation.py, tools/fkd/): resume, multi-process, replay fidelity."""
import hashlib
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from gloo_ranks import free_port

from mmkd_ext.fkd.datasets import FKDReplayCrop
from mmkd_ext.fkd.generation import build_teachers, generate_labels, teacher_probs
from mmkd_ext.fkd.store import LabelStore, LabelStoreError
from mmkd_ext.registry import DATASETS

from .fkd_helpers import LABEL_CONFIG, N_IMAGES, label_config, one_thread

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def quiet(*_):
    pass


@pytest.fixture(scope='module')
def full_store(tmp_path_factory, teacher_ckpt):
    root = tmp_path_factory.mktemp('full') / 'store'
    with one_thread():
        report = generate_labels(label_config(root, teacher_ckpt), progress=False, log=quiet)
    assert report.manifest is not None and report.images == N_IMAGES
    return str(root)


def store_bytes(root):
    names = sorted(n for n in os.listdir(root) if n.startswith('shard-') and n.endswith('.npy'))
    return {n: open(osp.join(root, n), 'rb').read() for n in names}


def test_manifest_records_teacher_checkpoint_and_dataset(full_store, teacher_ckpt):
    man = LabelStore(full_store).manifest
    assert man['teacher']['checkpoints'] == [hashlib.sha256(open(teacher_ckpt, 'rb').read()).hexdigest()]
    assert man['dataset']['size'] == N_IMAGES
    assert (man['num_crops'], man['strategy'], man['k'], man['input_size']) == (4, 'marginal_smoothing', 5, [32, 32])
    assert [s['name'] for s in man['shards']] == ['shard-00000', 'shard-00001', 'shard-00002']


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, full_store, teacher_ckpt):
    root = tmp_path / 'store'
    cfg = label_config(root, teacher_ckpt)
    first = generate_labels(cfg, stop_after=5, progress=False, log=quiet)  # stops inside shard 1
    assert first.images == 6 and first.manifest is None
    with pytest.raises(LabelStoreError, match='incomplete'):
        LabelStore(str(root))
    second = generate_labels(cfg, progress=False, log=quiet)
    assert second.images == N_IMAGES - 6  # nothing labelled twice
    assert store_bytes(str(root)) == store_bytes(full_store)
    assert LabelStore(str(root)).manifest == LabelStore(full_store).manifest


def test_resume_with_another_teacher_is_refused(tmp_path, teacher_ckpt):
    root = tmp_path / 'store'
    generate_labels(label_config(root, teacher_ckpt), stop_after=1, progress=False, log=quiet)
    other = str(tmp_path / 'other.pth')
    state = torch.load(teacher_ckpt, weights_only=False)
    state['state_dict'] = {k: v + 1 if v.is_floating_point() else v for k, v in state['state_dict'].items()}
    torch.save(state, other)
    with pytest.raises(LabelStoreError, match='different settings.*teacher'):
        generate_labels(label_config(root, other), progress=False, log=quiet)


def test_replayed_crop_reproduces_stored_label(full_store, teacher_ckpt):
    cfg = label_config('unused', teacher_ckpt)
    teacher = build_teachers(cfg.teachers, torch.device('cpu'))
    dataset = DATASETS.build(cfg.label_dataset.to_dict())
    store = LabelStore(full_store)
    replay = FKDReplayCrop(scale=32, interpolation='bilinear')
    for index in (0, 7, 11):
        crops = store.crops(index)
        img = dataset[index]['img']
        for j in range(store.num_crops):
            crop = replay(dict(img=img, fkd_coords=crops.coords[j], fkd_flip=crops.flips[j]))['img']
            probs = teacher_probs(teacher, crop[None], temperature=1.0)[0]
            top = probs.topk(5)
            assert crops.indices[j].tolist() == top.indices.tolist()
            assert np.allclose(crops.values[j], top.values.numpy(), atol=1e-3, rtol=1e-3)  # fp16 storage


def test_flips_are_sampled_and_replayed(full_store):
    flips = np.concatenate([LabelStore(full_store).crops(i).flips for i in range(N_IMAGES)])
    assert 0 < flips.sum() < len(flips)  # flip_prob 0.5 over 48 crops


def test_two_processes_write_the_same_store_as_one(tmp_path, full_store, teacher_ckpt):
    # torchrun, 2 ranks each writing its own shards, vs. the in-process single-process store (same settings)
    store = tmp_path / 'two'
    opts = ['--cfg-options', f'teachers.0.checkpoint={teacher_ckpt}', f'label_dataset.indices={N_IMAGES}',
            f'fkd_generation.store_dir={store}', 'fkd_generation.num_crops=4', 'fkd_generation.images_per_batch=2',
            'fkd_generation.shard_size=4', 'fkd_generation.flip_prob=0.5']
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=str(free_port()))
    out = subprocess.run(['bash', 'tools/fkd/dist_generate_labels.sh', LABEL_CONFIG, '2', *opts, '--no-progress'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert 'rank 0: 8 images' in out.stdout and 'rank 1: 4 images' in out.stdout  # shards 0, 2 and shard 1
    assert store_bytes(str(store)) == store_bytes(full_store)
    assert LabelStore(str(store)).manifest == LabelStore(full_store).manifest


def test_several_teachers_are_averaged_in_probability_space(teacher_ckpt):
    from mmengine.config import Config

    from mmkd_ext.registry import MODELS
    cfg = Config.fromfile(LABEL_CONFIG)
    torch.manual_seed(1)
    models = [MODELS.build(cfg.teachers[0].model.to_dict()).eval() for _ in range(2)]
    crops = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    single = [teacher_probs([m], crops, temperature=2.0) for m in models]
    assert torch.allclose(teacher_probs(models, crops, temperature=2.0), (single[0] + single[1]) / 2, atol=1e-6)
    assert torch.allclose(teacher_probs(models, crops, 2.0, crops_per_forward=2),
                          teacher_probs(models, crops, 2.0), atol=1e-5)


@pytest.mark.parametrize('damage', ['corrupt', 'truncate'])
def test_rerun_regenerates_just_the_damaged_shard(tmp_path, full_store, teacher_ckpt, damage):
    """After a corrupt-shard error, running the generation again repairs the store (issue 18, item 6)."""
    import shutil
    root = str(tmp_path / 'store')
    shutil.copytree(full_store, root)
    shard = osp.join(root, 'shard-00001.npy')
    data = bytearray(open(shard, 'rb').read())
    if damage == 'corrupt':
        data[-1] ^= 0xFF
    else:
        data = data[:len(data) // 2]
    with open(shard, 'wb') as f:
        f.write(bytes(data))
    with pytest.raises(LabelStoreError, match=r'shard-00001\.npy.*generate_labels\.py .*damaged shards'):
        LabelStore(root)
    untouched = {n: os.stat(osp.join(root, n)).st_mtime_ns for n in ('shard-00000.npy', 'shard-00002.npy')}
    lines = []
    report = generate_labels(label_config(root, teacher_ckpt), progress=False, log=lines.append)
    assert report.images == 4  # the 4 images of shard 1, nothing else
    assert any('shard-00001.npy' in line and 'regenerating' in line for line in lines)
    assert {n: os.stat(osp.join(root, n)).st_mtime_ns for n in untouched} == untouched
    assert store_bytes(root) == store_bytes(full_store)
    assert LabelStore(root).manifest == LabelStore(full_store).manifest
