"""VRM edges, masks and the two edge-matching implementations (mmkd_ext/vrm/edges.py)."""
import math

import numpy as np
import pytest
import torch

from mmkd_ext.vrm import edges as E

# Hand-computed batch, B = 3, C = 4 (student logits).
Z = torch.tensor([[3., 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]], dtype=torch.float64)
ZV = torch.tensor([[0., 4, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=torch.float64)


def _entropy_one_hot_logit(a: float, c: int = 4) -> float:
    """Entropy of softmax([a, 0, ..., 0]) with c classes, by hand."""
    big, small = math.exp(a) / (math.exp(a) + c - 1), 1 / (math.exp(a) + c - 1)
    return -(big * math.log(big) + (c - 1) * small * math.log(small))


def test_isv_edges_match_hand_computed_unit_differences():
    s10, s20, s5 = math.sqrt(10), math.sqrt(20), math.sqrt(5)
    expected = torch.tensor([
        [[.6, -.8, 0, 0], [3 / s10, 0, 0, -1 / s10], [1, 0, 0, 0]],
        [[0, -1, 0, 0], [0, 0, 0, -1], [-1, 0, 0, 0]],
        [[0, -4 / s20, 0, 2 / s20], [0, 0, 0, 1], [-1 / s5, 0, 0, 2 / s5]],
    ], dtype=torch.float64)
    edges = E.cross_edges(*E.isv_vertices(Z, ZV))
    assert edges.shape == (3, 3, 4)
    torch.testing.assert_close(edges, expected)


def test_icv_edges_have_shape_c_c_b_and_unit_norm():
    torch.manual_seed(0)
    z, z_v = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    edges = E.cross_edges(*E.icv_vertices(z, z_v))
    assert edges.shape == (7, 7, 5)
    torch.testing.assert_close(edges.norm(dim=2), torch.ones(7, 7, dtype=torch.float64))
    # E^ICV[c, d] is built from class c of the real view and class d of the virtual view
    diff = z[:, 2] - z_v[:, 4]
    torch.testing.assert_close(edges[2, 4], diff / diff.norm())


def test_dense_two_view_graph_is_antisymmetric():
    # the symmetry of the dense 2B x 2B graph is what justifies dropping half of it (redundant-edge pruning)
    both = torch.cat([Z, ZV])
    dense = E.cross_edges(both, both)
    torch.testing.assert_close(dense, -dense.transpose(0, 1))


def test_diff_vertices_icv_uses_per_class_view_differences():
    x, y = E.icv_vertices(Z, ZV, mode='diff_vertices')
    torch.testing.assert_close(x, (Z - ZV).t())
    assert x is y
    mask = E.upper_triangle_mask(4)
    assert mask.sum() == 6 and not mask.diagonal().any() and mask[0, 3] and not mask[3, 0]


def test_nondegenerate_mask_drops_equal_class_vectors():
    # columns: real w_1 = w_2 = 0 and virtual w~_2 = 0, so ICV edges (1, 2) and (2, 2) have no direction
    keep = E.nondegenerate_edge_mask(Z.t(), ZV.t())
    expected = torch.ones(4, 4, dtype=torch.bool)
    expected[1, 2] = expected[2, 2] = False
    assert torch.equal(keep, expected)


def test_joint_entropy_is_sum_of_hand_computed_entropies():
    h_real = [_entropy_one_hot_logit(3), math.log(4), _entropy_one_hot_logit(2)]
    h_virt = [_entropy_one_hot_logit(4), _entropy_one_hot_logit(1), _entropy_one_hot_logit(1)]
    expected = torch.tensor([[a + b for b in h_virt] for a in h_real], dtype=torch.float64)
    torch.testing.assert_close(E.joint_entropy(Z, ZV), expected)


def test_reliable_edge_mask_prunes_the_two_most_uncertain_edges_at_m80():
    # joint entropies (hand): (1,1) = (1,2) = ln4 + H(1) = 2.655 are the top two; P_80 = 2.374 lies below them
    keep = E.reliable_edge_mask(Z, ZV, m=80)
    expected = torch.ones(3, 3, dtype=torch.bool)
    expected[1, 1] = expected[1, 2] = False
    assert torch.equal(keep, expected)


def test_percentile_matches_numpy_linear_interpolation():
    values = torch.randn(7, 9, generator=torch.Generator().manual_seed(3))
    for m in (0, 10, 50, 90, 100):
        assert E.percentile(values, m).item() == pytest.approx(np.percentile(values.numpy(), m), abs=1e-6)


def test_masked_fraction_is_100_minus_m_percent():
    torch.manual_seed(1)
    b = 16
    z, z_v = torch.randn(b, 10) * 3, torch.randn(b, 10) * 3
    for m in (50, 70, 90):
        dropped = 1 - E.reliable_edge_mask(z, z_v, m).float().mean().item()
        assert abs(dropped - (100 - m) / 100) <= 1 / b ** 2 + 1e-9


@pytest.mark.parametrize('distance', ['mse', 'cosine'])
@pytest.mark.parametrize('n,m,d', [(6, 6, 5), (9, 4, 3)])
def test_gram_path_equals_reference_loss_and_gradients(distance, n, m, d):
    g = torch.Generator().manual_seed(n * 100 + d)
    x_s = torch.randn(n, d, dtype=torch.float64, generator=g).requires_grad_()
    y_s = torch.randn(m, d, dtype=torch.float64, generator=g).requires_grad_()
    x_t, y_t = torch.randn(n, d, dtype=torch.float64, generator=g), torch.randn(m, d, dtype=torch.float64, generator=g)
    keep = torch.rand(n, m, generator=g) > 0.3
    ref = E.edge_loss_reference(x_s, y_s, x_t, y_t, keep, distance)
    grads_ref = torch.autograd.grad(ref, (x_s, y_s))
    lean = E.edge_loss_gram(x_s, y_s, x_t, y_t, keep, distance)
    grads_lean = torch.autograd.grad(lean, (x_s, y_s))
    torch.testing.assert_close(lean, ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads_lean, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('distance', ['mse', 'smooth_l1', 'cosine'])
def test_chunked_reference_equals_unchunked(distance):
    g = torch.Generator().manual_seed(7)
    x_s = torch.randn(7, 4, dtype=torch.float64, generator=g).requires_grad_()
    y_s = torch.randn(5, 4, dtype=torch.float64, generator=g)
    x_t, y_t = torch.randn(7, 4, dtype=torch.float64, generator=g), torch.randn(5, 4, dtype=torch.float64, generator=g)
    keep = torch.rand(7, 5, generator=g) > 0.2
    full = E.edge_loss_reference(x_s, y_s, x_t, y_t, keep, distance)
    (g_full, ) = torch.autograd.grad(full, x_s)
    chunked = E.edge_loss_reference(x_s, y_s, x_t, y_t, keep, distance, chunk_size=3)
    (g_chunked, ) = torch.autograd.grad(chunked, x_s)
    torch.testing.assert_close(chunked, full)
    torch.testing.assert_close(g_chunked, g_full)


def test_mse_of_opposite_edges_is_4_over_d():
    # e_T = -e_S for every edge: ||e_S - e_T||^2 = 4 per edge, i.e. 4 / D per element
    keep = torch.ones(3, 3, dtype=torch.bool)
    for loss in (E.edge_loss_reference, E.edge_loss_gram):
        assert loss(Z, ZV, -Z, -ZV, keep, 'mse').item() == pytest.approx(1.0)
        assert loss(Z, ZV, -Z, -ZV, keep, 'cosine').item() == pytest.approx(2.0)


def test_gram_path_rejects_smooth_l1():
    keep = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match='does not reduce'):
        E.edge_loss_gram(Z, ZV, Z, ZV, keep, 'smooth_l1')


def test_split_views_rejects_odd_batch():
    with pytest.raises(ValueError, match='odd.*VRMVirtualView'):
        E.split_views(torch.zeros(5, 4))


def test_check_view_logits_rejects_single_sample_and_single_class():
    one = torch.zeros(1, 4)
    with pytest.raises(ValueError, match='batch size 1'):
        E.check_view_logits(one, one, one, one)
    col = torch.zeros(3, 1)
    with pytest.raises(ValueError, match='1 class'):
        E.check_view_logits(col, col, col, col)
    with pytest.raises(ValueError, match='share one'):
        E.check_view_logits(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 5), torch.zeros(3, 5))
