"""The FKD label store (mmkd_ext/fkd/store.py): format, random access, manifest checks, bad input."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmkd_ext.fkd.compression import LabelCodec
from mmkd_ext.fkd.store import (
    LabelStore,
    LabelStoreError,
    ShardWriter,
    finalize_store,
    make_manifest,
    record_dtype,
    start_store,
)

N_IMAGES, M, C = 5, 3, 10


def manifest(codec, num_crops=M, files='abc'):
    return make_manifest(teacher=dict(configs=['t'], checkpoints=['ckpt0'], names=['ImageClassifier']),
                         dataset=dict(size=N_IMAGES, files_sha256=files), num_crops=num_crops,
                         crop=dict(scale=[0.08, 1.0]), codec=codec, input_size=(8, 8), temperature=1.0,
                         coord_dtype='float16', seed=0, shard_size=2, images_per_batch=1)


def probs_of(i):
    """Image i, crop j: a distribution peaked at class (i + j) % C (distinct per crop)."""
    p = torch.full((M, C), 0.02)
    for j in range(M):
        p[j, (i + j) % C] = 0.82
    return p


def write_store(root, strategy='marginal_smoothing', k=2, finish=True):
    codec = LabelCodec(strategy, C, k=k)
    man = start_store(root, manifest(codec))
    dtype = record_dtype(codec, M)
    for s in range(len(man['shards'])):
        w = ShardWriter(root, man, s)
        for i in range(w.start, w.stop):
            rec = np.zeros(1, dtype)
            rec[0]['coords'] = np.full((M, 4), 0.25) + 0.125 * np.arange(M)[:, None] / 2
            rec[0]['flip'] = np.arange(M) % 2
            idx, val = codec.encode(probs_of(i))
            if codec.num_indices:
                rec[0]['indices'] = idx
            if codec.num_values:
                rec[0]['values'] = val
            w.write(i, rec)
        if finish:
            w.finish()
    if finish:
        finalize_store(root)
    return root


@pytest.fixture
def store_dir(tmp_path):
    return write_store(str(tmp_path / 'store'))


def test_records_read_back_by_random_access(store_dir):
    store = LabelStore(store_dir)
    crops = store.crops(3)  # image 3 lives in the second shard (images 2, 3)
    assert crops.flips.tolist() == [False, True, False]
    assert np.allclose(crops.coords[1], [0.3125] * 4)
    labels = store.soft_labels(3, [0, 2])
    assert labels.shape == (2, C)
    assert int(labels[0].argmax()) == 3 and int(labels[1].argmax()) == 5
    assert torch.allclose(labels.sum(1), torch.ones(2))


def test_shards_split_images_into_fixed_ranges(store_dir):
    man = LabelStore(store_dir).manifest
    assert [(s['start'], s['stop']) for s in man['shards']] == [(0, 2), (2, 4), (4, 5)]


def test_record_i_sits_at_a_fixed_byte_offset(store_dir):
    store = LabelStore(store_dir)
    path = osp.join(store_dir, 'shard-00001.npy')
    rec_bytes = store.dtype.itemsize
    size = osp.getsize(path)
    header = size - 2 * rec_bytes  # shard 1 holds 2 records after the .npy header
    with open(path, 'rb') as f:
        f.seek(header + 1 * rec_bytes)
        raw = np.frombuffer(f.read(rec_bytes), dtype=store.dtype)[0]
    assert raw.tobytes() == store.record(3).tobytes()


def test_marginal_smoothing_k5_fp16_is_at_most_32_bytes_per_crop():
    # per crop: 4 fp16 coords (8) + flip (1) + 5 indices + 5 fp16 values (10)
    assert record_dtype(LabelCodec('marginal_smoothing', 1000, k=5), 200).itemsize / 200 == 8 + 1 + 10 + 10
    assert record_dtype(LabelCodec('marginal_smoothing', 100, k=5), 200).itemsize / 200 == 8 + 1 + 5 + 10


def test_full_and_hard_records_omit_empty_fields():
    assert record_dtype(LabelCodec('full', C), M).names == ('coords', 'flip', 'values')
    assert record_dtype(LabelCodec('hard', C), M).names == ('coords', 'flip', 'indices')


def test_store_pickles_without_its_memory_maps(store_dir):
    store = LabelStore(store_dir)
    store.crops(0)
    clone = pickle.loads(pickle.dumps(store))
    assert clone._maps == {}
    assert clone.record(4).tobytes() == store.record(4).tobytes()


def test_incomplete_store_is_rejected(tmp_path):
    root = write_store(str(tmp_path / 's'), finish=False)
    with pytest.raises(LabelStoreError, match=r'incomplete \(0 of 3 shards'):
        LabelStore(root)


def test_truncated_shard_is_named(store_dir):
    path = osp.join(store_dir, 'shard-00001.npy')
    with open(path, 'r+b') as f:
        f.truncate(osp.getsize(path) - 7)
    with pytest.raises(LabelStoreError, match=r'shard-00001\.npy.*truncated'):
        LabelStore(store_dir)


def test_corrupt_shard_fails_the_checksum(store_dir):
    path = osp.join(store_dir, 'shard-00002.npy')
    with open(path, 'r+b') as f:
        f.seek(osp.getsize(path) - 1)
        last = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(LabelStoreError, match=r'shard-00002\.npy.*sha256'):
        LabelStore(store_dir)


def test_invalid_record_is_caught_on_read_even_without_checksums(store_dir):
    store = LabelStore(store_dir)
    arr = np.load(osp.join(store_dir, 'shard-00000.npy'), mmap_mode='r+')
    arr[1]['indices'][0, 0] = C + 3  # a class that does not exist
    arr.flush()
    quick = LabelStore(store_dir, verify='quick')
    with pytest.raises(LabelStoreError, match=r'record 1 \(image 1\) of label store shard shard-00000\.npy'):
        quick.crops(1)
    assert store.crops(0) is not None


def test_corrupt_manifest_is_named(store_dir):
    with open(osp.join(store_dir, 'manifest.json'), 'w') as f:
        f.write('{"format_version": 1, "sha')
    with pytest.raises(LabelStoreError, match=r'manifest\.json.*not valid JSON'):
        LabelStore(store_dir)


def test_store_of_another_dataset_is_rejected(store_dir):
    store = LabelStore(store_dir)
    store.check_dataset(dict(size=N_IMAGES, files_sha256='abc'))
    with pytest.raises(LabelStoreError, match='another dataset.*number of images'):
        store.check_dataset(dict(size=6, files_sha256='abc'))
    with pytest.raises(LabelStoreError, match='another dataset.*image files'):
        store.check_dataset(dict(size=N_IMAGES, files_sha256='xyz'))


def test_store_of_another_teacher_is_rejected(store_dir):
    store = LabelStore(store_dir)
    with pytest.raises(LabelStoreError, match="another teacher: checkpoints sha256 differ.*'ckpt0'"):
        store.check_teacher(dict(checkpoints=['ckpt1']))


def test_resuming_with_other_settings_names_the_field(tmp_path):
    root = str(tmp_path / 's')
    start_store(root, manifest(LabelCodec('marginal_smoothing', C, k=2)))
    with pytest.raises(LabelStoreError, match=r'num_crops: on disk 3, now 4'):
        start_store(root, manifest(LabelCodec('marginal_smoothing', C, k=2), num_crops=4))


def test_unflagged_record_is_pending_again(tmp_path):
    # a record written without its done flag (killed in between) must be regenerated on resume
    root = str(tmp_path / 's')
    codec = LabelCodec('hard', C)
    man = start_store(root, manifest(codec))
    w = ShardWriter(root, man, 0)
    w.records[0]['flip'][:] = 1  # data written, flag not set
    assert list(w.pending(1)) == [(0, 1), (1, 2)]
    w.write(0, np.zeros(1, w.dtype))
    assert list(ShardWriter(root, man, 0).pending(1)) == [(1, 2)]
