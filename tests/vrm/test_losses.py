"""VRMLoss (mmkd_ext/vrm/losses.py): Eq. 3 relation terms, pruning on the student, lean vs reference."""
import copy
import math

import pytest
import torch

from mmkd_ext.registry import MODELS
from mmkd_ext.vrm import edges as E
from mmkd_ext.vrm.losses import VRMLoss

Z = torch.tensor([[3., 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]], dtype=torch.float64)
ZV = torch.tensor([[0., 4, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=torch.float64)
# Teacher: same real view; virtual sample 2 is [2, 0, 0, 0], which changes only ISV edge (2, 2):
# student (-1, 0, 0, 2)/sqrt5, teacher (-1, 0, 0, 1)/sqrt2, so ||e_S - e_T||^2 = 2 - 2 * 3/sqrt10.
ZV_T = torch.tensor([[0., 4, 0, 0], [0, 0, 0, 1], [2, 0, 0, 0]], dtype=torch.float64)
EDGE_22 = 2 - 6 / math.sqrt(10)


def _plain(**kwargs):
    cfg = dict(alpha=1.0, beta=0.0, zsnorm=False, adaptor=False)
    cfg.update(kwargs)
    return VRMLoss(**cfg)


def test_isv_loss_on_hand_computed_batch_without_pruning():
    out = _plain(percentile=100)(torch.cat([Z, ZV]), torch.cat([Z, ZV_T]))
    assert out['loss_isv'].item() == pytest.approx(EDGE_22 / (9 * 4))


def test_isv_loss_on_hand_computed_batch_with_pruning_m80():
    # m = 80 prunes edges (1, 1) and (1, 2) (see test_edges): 7 kept edges x 4 classes
    out = _plain(percentile=80)(torch.cat([Z, ZV]), torch.cat([Z, ZV_T]))
    assert out['loss_isv'].item() == pytest.approx(EDGE_22 / (7 * 4))


def test_alpha_beta_scale_the_terms():
    s, t = torch.cat([Z, ZV]), torch.cat([-Z, -ZV])
    out = VRMLoss(alpha=128, beta=32, zsnorm=False, adaptor=False, percentile=100)(s, t)
    # teacher edges are the negated student edges: MSE 4 / D per element (D = C for ISV, B for ICV)
    assert out['loss_isv'].item() == pytest.approx(128 * 4 / 4)
    # ICV: 16 class pairs minus the 2 degenerate ones, each edge negated: 4 / B per element
    assert out['loss_icv'].item() == pytest.approx(32 * 4 / 3)


def test_registered_in_mmrazor_models_with_spec_defaults():
    loss = MODELS.build(dict(_scope_='mmrazor', type='VRMLoss', num_classes=10))
    assert (loss.alpha, loss.beta, loss.percentile) == (128.0, 32.0, 90.0)
    assert loss.zsnorm and loss.adaptor is not None and loss.icv_mode == 'bipartite'
    assert loss.opts.distance == 'mse' and not loss.icv_prune


@pytest.mark.parametrize('distance', ['mse', 'cosine'])
@pytest.mark.parametrize('icv_mode', ['bipartite', 'diff_vertices'])
def test_lean_and_reference_give_equal_loss_and_gradients(distance, icv_mode):
    torch.manual_seed(0)
    lean = VRMLoss(num_classes=6, distance=distance, icv_mode=icv_mode, implementation='gram').double()
    ref = copy.deepcopy(lean)
    ref.opts.implementation = 'reference'
    s = (torch.randn(10, 6, dtype=torch.float64) * 2)
    t = torch.randn(10, 6, dtype=torch.float64) * 2
    results = []
    for loss in (lean, ref):
        s_ = s.clone().requires_grad_()
        out = loss(s_, t)
        total = out['loss_isv'] + out['loss_icv']
        grads = torch.autograd.grad(total, [s_] + list(loss.adaptor.parameters()))
        results.append((out, grads))
    (out_l, g_l), (out_r, g_r) = results
    for key in ('loss_isv', 'loss_icv'):
        torch.testing.assert_close(out_l[key], out_r[key], rtol=1e-10, atol=1e-12)
    for a, b in zip(g_l, g_r):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_smooth_l1_falls_back_to_the_chunked_direct_path():
    torch.manual_seed(0)
    s, t = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    auto = VRMLoss(adaptor=False, distance='smooth_l1', chunk_size=2)(s, t)
    direct = VRMLoss(adaptor=False, distance='smooth_l1', implementation='reference')(s, t)
    for key in auto:
        torch.testing.assert_close(auto[key], direct[key])


def test_teacher_gets_no_gradient():
    torch.manual_seed(0)
    s = torch.randn(8, 5, requires_grad=True)
    t = torch.randn(8, 5, requires_grad=True)
    out = VRMLoss(num_classes=5)(s, t)
    (out['loss_isv'] + out['loss_icv']).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_pruning_follows_student_entropy_not_teacher():
    torch.manual_seed(0)
    s = torch.randn(12, 6, dtype=torch.float64) * 3
    t = torch.randn(12, 6, dtype=torch.float64) * 3
    (z_s, z_s_v), (z_t, z_t_v) = s.chunk(2), t.chunk(2)
    from_student = E.reliable_edge_mask(z_s, z_s_v, 70)
    from_teacher = E.reliable_edge_mask(z_t, z_t_v, 70)
    assert not torch.equal(from_student, from_teacher)
    expected = E.edge_loss_reference(z_s, z_s_v, z_t, z_t_v, from_student)
    wrong = E.edge_loss_reference(z_s, z_s_v, z_t, z_t_v, from_teacher)
    got = _plain(percentile=70)(s, t)['loss_isv']
    assert got.item() == pytest.approx(expected.item())
    assert got.item() != pytest.approx(wrong.item())


def test_pruned_real_sample_gets_no_isv_gradient():
    # real sample 0 is uniform (highest entropy): at m = 75 its 4 edges are exactly the pruned top 25% of 16
    z = torch.tensor([[0., 0, 0, 0, 0], [6, 0, 0, 0, 0], [0, 7, 0, 0, 0], [0, 0, 8, 0, 0]], dtype=torch.float64)
    z_v = torch.tensor([[0., 0, 0, 0, 5], [5, 0, 0, 1, 0], [0, 6, 0, 0, 0], [0, 0, 7, 0, 0]], dtype=torch.float64)
    keep = E.reliable_edge_mask(z, z_v, 75)
    assert not keep[0].any() and keep[1:].all()
    s = torch.cat([z, z_v]).requires_grad_()
    t = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    _plain(percentile=75)(s, t)['loss_isv'].backward()
    assert torch.all(s.grad[0] == 0)
    assert s.grad[1:4].abs().sum() > 0


def test_odd_batch_without_virtual_view_is_rejected():
    with pytest.raises(ValueError, match='VRMVirtualView'):
        VRMLoss(adaptor=False)(torch.randn(7, 4), torch.randn(7, 4))


def test_single_image_and_single_class_are_rejected():
    with pytest.raises(ValueError, match='batch size 1'):
        VRMLoss(adaptor=False)(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match='at least 2 classes'):
        VRMLoss(adaptor=False)(torch.randn(6, 1), torch.randn(6, 1))


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match='num_classes'):
        VRMLoss()
    with pytest.raises(ValueError, match='distance'):
        VRMLoss(adaptor=False, distance='kl')
    with pytest.raises(ValueError, match="implementation='gram'"):
        VRMLoss(adaptor=False, distance='smooth_l1', implementation='gram')
    with pytest.raises(ValueError, match='icv_mode'):
        VRMLoss(adaptor=False, icv_mode='dense')


def test_icv_prune_drops_uncertain_samples_from_icv():
    torch.manual_seed(0)
    s, t = torch.randn(12, 5, dtype=torch.float64) * 3, torch.randn(12, 5, dtype=torch.float64) * 3
    (z_s, z_s_v), (z_t, z_t_v) = s.chunk(2), t.chunk(2)
    rows = E.reliable_sample_mask(z_s, z_s_v, 60)
    assert 0 < rows.sum() < 6
    x_s, y_s = E.icv_vertices(z_s[rows], z_s_v[rows])
    x_t, y_t = E.icv_vertices(z_t[rows], z_t_v[rows])
    expected = E.edge_loss_reference(x_s, y_s, x_t, y_t, torch.ones(5, 5, dtype=torch.bool))
    got = VRMLoss(alpha=0.0, beta=1.0, zsnorm=False, adaptor=False, percentile=60, icv_prune=True)(s, t)['loss_icv']
    assert got.item() == pytest.approx(expected.item())


def test_warmup_factor_scales_both_terms():
    s, t = torch.cat([Z, ZV]), torch.cat([-Z, -ZV])
    loss = VRMLoss(alpha=128, beta=32, zsnorm=False, adaptor=False, percentile=100)
    loss.warmup_factor = 0.25
    out = loss(s, t)
    assert out['loss_isv'].item() == pytest.approx(0.25 * 128 * 4 / 4)
    assert out['loss_icv'].item() == pytest.approx(0.25 * 32 * 4 / 3)
