"""FKD Eqs. 3-7 on hand-computed examples (mmkd_ext/fkd/compression.py)."""
import numpy as np
import pytest
import torch

from mmkd_ext.fkd.compression import LabelCodec, check_k

# One crop, C = 5 classes. Hand-computed expectations below use these numbers.
P = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05]])


def roundtrip(strategy, k=2, value_dtype='float32'):
    codec = LabelCodec(strategy, 5, k=k, value_dtype=value_dtype)
    return codec.decode(*codec.encode(P))


def test_hard_label_is_one_hot_at_argmax():  # Eq. 3
    assert torch.equal(roundtrip('hard'), torch.tensor([[0., 1., 0., 0., 0.]]))


def test_smoothing_spreads_rest_of_argmax_probability():  # Eq. 4: (1 - 0.5) / 4 = 0.125
    expected = torch.tensor([[0.125, 0.5, 0.125, 0.125, 0.125]])
    assert torch.allclose(roundtrip('smoothing'), expected, atol=1e-7)


def test_marginal_smoothing_top2_spreads_rest_evenly():  # Eq. 5: (1 - 0.8) / 3
    r = 0.2 / 3
    expected = torch.tensor([[r, 0.5, r, 0.3, r]])
    assert torch.allclose(roundtrip('marginal_smoothing', k=2), expected, atol=1e-7)


def test_marginal_renorm_top2_normalises_kept_values():  # Eqs. 6-7: 0.5/0.8, 0.3/0.8
    expected = torch.tensor([[0., 0.625, 0., 0.375, 0.]])
    assert torch.allclose(roundtrip('marginal_renorm', k=2), expected, atol=1e-7)


def test_full_roundtrip_keeps_distribution():
    assert torch.allclose(roundtrip('full'), P, atol=1e-7)


def test_topk_encoding_stores_indices_and_values_in_descending_order():
    idx, val = LabelCodec('marginal_smoothing', 5, k=3).encode(P)
    assert idx.tolist() == [[1, 3, 0]]
    assert np.allclose(val.astype(np.float32), [[0.5, 0.3, 0.1]], atol=1e-3)


@pytest.mark.parametrize('strategy', ['full', 'hard', 'smoothing', 'marginal_smoothing', 'marginal_renorm'])
def test_recovered_fp16_distributions_sum_to_one(strategy):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(64, 100) * 3, dim=1)
    codec = LabelCodec(strategy, 100, k=5, value_dtype='float16')
    rec = codec.decode(*codec.encode(probs))
    assert rec.shape == (64, 100)
    assert torch.allclose(rec.sum(1), torch.ones(64), atol=1e-6)
    assert (rec >= 0).all()


def test_fp16_values_are_stored_as_half():
    _, val = LabelCodec('marginal_smoothing', 5, k=2).encode(P)
    assert val.dtype == np.float16 and val.itemsize == 2


def test_fp16_rounding_above_one_still_recovers_a_distribution():
    # top-2 values that round to a sum > 1 in fp16: the spread mass must clamp at 0, not go negative
    codec = LabelCodec('marginal_smoothing', 4, k=2)
    rec = codec.decode(np.array([[0, 1]]), np.array([[0.7, 0.3007]], dtype=np.float16))
    assert (rec >= 0).all() and abs(float(rec.sum()) - 1.0) < 1e-6
    assert float(rec[0, 2]) == 0.0


def test_k_not_smaller_than_num_classes_is_rejected():
    with pytest.raises(ValueError, match='K=5 for C=5'):
        LabelCodec('marginal_smoothing', 5, k=5)
    with pytest.raises(ValueError, match='1 <= K < C'):
        check_k(0, 10)


def test_bytes_per_crop_of_marginal_smoothing_k5():
    # 1000 classes: u2 indices (10 B) + fp16 values (10 B); 10 classes: u1 indices (5 B) + 10 B
    assert LabelCodec('marginal_smoothing', 1000, k=5).bytes_per_crop() == 20
    assert LabelCodec('marginal_smoothing', 10, k=5).bytes_per_crop() == 15
    assert LabelCodec('hard', 1000).bytes_per_crop() == 2
    assert LabelCodec('full', 1000).bytes_per_crop() == 2000
