"""The torchvision stand-ins of mmcv's nms / RoIAlign / sigmoid focal loss equal mmcv's CPU kernels.

CPU tensors go through the same dispatch as CUDA tensors on an mmcv without CUDA ops (``force_fallback``),
so mmcv's Python code (thresholds, batched offsets, reductions, autograd) runs around the stand-in kernels.
"""
import contextlib
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import RoIAlign, batched_nms, nms, roi_align, sigmoid_focal_loss
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from mmkd_ext.compat import mmcv_ops
from mmkd_ext.compat.mmcv_ops import force_fallback


def random_boxes(n, seed, size=50.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    scores = torch.randperm(n, generator=g).float() / n + 0.01  # distinct: no tie order to disagree on
    return torch.cat([xy, xy + wh], dim=1), scores


@pytest.mark.parametrize('kwargs', [dict(), dict(offset=1), dict(score_threshold=0.3, max_num=5)])
def test_nms_stand_in_keeps_the_boxes_mmcv_keeps(kwargs):
    boxes, scores = random_boxes(40, seed=0)
    dets, keep = nms(boxes, scores, 0.3, **kwargs)
    with force_fallback():
        dets_tv, keep_tv = nms(boxes, scores, 0.3, **kwargs)
    assert 0 < len(keep) < 40
    assert torch.equal(keep_tv, keep) and torch.equal(dets_tv, dets)


def test_nms_offset_one_widens_boxes_by_a_pixel():
    # IoU with offset 0: 1/3 (kept at 0.4); with offset 1: widths 3 and 3, overlap 2 -> 2/4 = 0.5 (dropped)
    boxes = torch.tensor([[0., 0., 2., 0.], [1., 0., 3., 0.]])
    scores = torch.tensor([0.9, 0.8])
    with force_fallback():
        assert nms(boxes + torch.tensor([0., 0., 0., 1.]), scores, 0.4)[1].tolist() == [0, 1]
        assert nms(boxes, scores, 0.4, offset=1)[1].tolist() == [0]
    assert nms(boxes, scores, 0.4, offset=1)[1].tolist() == [0]  # mmcv's own kernel agrees


@pytest.mark.parametrize('nms_cfg', [dict(iou_threshold=0.3), dict(iou_threshold=0.3, class_agnostic=True),
                                     dict(iou_threshold=0.3, split_thr=5)])
def test_batched_nms_stand_in_equals_mmcv(nms_cfg):
    boxes, scores = random_boxes(60, seed=1)
    idxs = torch.arange(60) % 3
    dets, keep = batched_nms(boxes, scores, idxs, dict(nms_cfg))
    with force_fallback():
        dets_tv, keep_tv = batched_nms(boxes, scores, idxs, dict(nms_cfg))
    assert torch.equal(keep_tv, keep) and torch.equal(dets_tv, dets)


def roi_inputs():
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(2, 3, 10, 12, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 1.0, 2.0, 15.0, 11.0],     # ordinary
                         [1, 3.3, 4.1, 3.9, 4.4],       # smaller than a feature pixel (aligned=False clamps)
                         [0, -4.0, -2.0, 8.0, 30.0],    # partly outside the image
                         [1, 20.5, 1.5, 23.9, 19.0]], dtype=torch.float64)
    return feats, rois


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_roi_align_stand_in_equals_mmcv_forward_and_backward(aligned, sampling_ratio):
    feats, rois = roi_inputs()
    grad_out = torch.randn(4, 3, 3, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    results = []
    for forced in (False, True):
        x = feats.clone().requires_grad_()
        with force_fallback() if forced else contextlib.nullcontext():
            out = roi_align(x, rois, (3, 4), 0.5, sampling_ratio, 'avg', aligned)
            out.backward(grad_out)
        results.append((out.detach(), x.grad))
    (out, grad), (out_tv, grad_tv) = results
    assert out.abs().sum() > 0 and grad.abs().sum() > 0
    torch.testing.assert_close(out_tv, out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_tv, grad, rtol=1e-10, atol=1e-12)


def test_roi_align_module_routes_to_the_stand_in_and_refuses_max_pooling():
    feats, rois = roi_inputs()
    layer = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=0, pool_mode='max')
    assert layer(feats, rois).shape == (4, 3, 2, 2)  # mmcv's CPU kernel has max pooling
    with force_fallback(), pytest.raises(NotImplementedError, match="pool_mode='max'"):
        layer(feats, rois)


def focal_reference(logits, target, gamma, alpha, weight, reduction):
    """torchvision's pure-torch focal loss on one-hot targets (background = all zeros), weight[target] per row."""
    onehot = F.one_hot(target, logits.shape[1] + 1)[:, :-1].to(logits.dtype)
    loss = tv_sigmoid_focal_loss(logits, onehot, alpha=alpha, gamma=gamma, reduction='none')
    if weight is not None:
        loss = loss * weight[target][:, None]
    return dict(none=loss, sum=loss.sum(), mean=loss.sum() / logits.shape[0])[reduction]


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('with_weight', [False, True])
def test_sigmoid_focal_loss_stand_in_equals_the_focal_loss_formula(reduction, with_weight):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64) * 3
    target = torch.tensor([0, 3, 1, 2, 3, 0]) if with_weight else torch.tensor([0, 4, 1, 4, 3, 2])  # 4 = background
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64) if with_weight else None
    x, ref_x = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ref = focal_reference(ref_x, target, 2.0, 0.25, weight, reduction)
    upstream = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ref.backward(upstream)
    with force_fallback():  # mmcv has no CPU focal-loss kernel: only the stand-in runs on CPU tensors
        loss = sigmoid_focal_loss(x, target, 2.0, 0.25, weight, reduction)
        loss.backward(upstream)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(x.grad, ref_x.grad)


def test_sigmoid_focal_loss_weight_with_background_target_is_refused():
    with force_fallback(), pytest.raises(ValueError, match='target < num_classes'):
        sigmoid_focal_loss(torch.zeros(2, 3), torch.tensor([0, 3]), 2.0, 0.25, torch.ones(3), 'mean')


def test_dispatch_only_for_cuda_tensors_and_only_without_mmcv_cuda_ops(monkeypatch):
    cuda, cpu = SimpleNamespace(is_cuda=True), SimpleNamespace(is_cuda=False)
    monkeypatch.setattr(mmcv_ops, '_MMCV_HAS_CUDA', False)
    assert mmcv_ops.uses_stand_in(cuda) and not mmcv_ops.uses_stand_in(cpu)
    monkeypatch.setattr(mmcv_ops, '_MMCV_HAS_CUDA', True)
    assert not mmcv_ops.uses_stand_in(cuda) and not mmcv_ops.uses_stand_in(cpu)
    with force_fallback():
        assert mmcv_ops.uses_stand_in(cpu)
    assert not mmcv_ops.uses_stand_in(cpu)


def test_ops_path_names_the_kernels_a_machine_uses():
    assert mmcv_ops.ops_path(True, '12.4').startswith('mmcv CUDA ops (mmcv compiled with CUDA 12.4)')
    assert mmcv_ops.ops_path(True, '').startswith('torchvision fallback')
    assert mmcv_ops.ops_path(False, '').startswith('CPU only')
    assert mmcv_ops.mmcv_cuda_version() is None  # this machine's mmcv is built with FORCE_CUDA=0
