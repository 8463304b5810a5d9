"""Detection on a GPU when mmcv's ops were compiled without CUDA: torchvision kernels stand in.

mmdet calls mmcv's compiled kernels for CUDA tensors: ``nms`` / ``batched_nms`` (RPN, test-time NMS),
``RoIAlign`` (Faster / Cascade R-CNN RoI heads) and ``sigmoid_focal_loss`` (RetinaNet's ``FocalLoss``).
An mmcv built with ``FORCE_CUDA=0`` (no ``nvcc``, or a CUDA/torch pair mmcv 2.1.0 does not compile with,
upstream open-mmlab/mmcv#3329) fails there with "nms is not compiled with GPU support".

:func:`apply` replaces the ``ext_module`` of ``mmcv.ops.nms``, ``mmcv.ops.roi_align`` and
``mmcv.ops.focal_loss`` by a :class:`DispatchingExt`: mmcv's Python code (score thresholds, ``max_num``,
the per-class offsets of ``batched_nms``, reductions, autograd) runs unchanged, and only the kernel call
goes to torchvision (``torchvision.ops.nms``, ``roi_align`` and its backward) or to the pure-torch focal
loss below, and only for CUDA tensors when mmcv lacks its own CUDA kernels. CPU tensors, and every tensor
on an mmcv compiled with CUDA, keep mmcv's kernels. :func:`force_fallback` routes CPU tensors through the
stand-ins too, so tests compare them with mmcv's CPU kernels on the same inputs.

Semantics kept from mmcv:

* ``nms``: boxes ``(x1, y1, x2, y2)``, a box is dropped when its IoU with a kept, higher-scored box is
  ``> iou_threshold``; mmcv's legacy ``offset=1`` (widths ``x2 - x1 + 1``) is emulated by adding 1 to
  ``x2, y2``.
* ``RoIAlign``: torchvision's ``roi_align`` is the same Detectron2 kernel as mmcv's ``pool_mode='avg'``
  (``aligned=True`` shifts by half a pixel, ``aligned=False`` clamps RoIs to >= 1 pixel,
  ``sampling_ratio=0`` samples ``ceil(roi_size / output_size)`` points per bin); ``pool_mode='max'``
  has no torchvision kernel and raises.
* ``sigmoid_focal_loss``: mmcv's CUDA kernel formula (loss and its analytic gradient, ``target == C``
  is background, ``weight`` indexed by the target class), written in torch.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Callable, Dict, Iterator, List, Optional

import torch
from torch import Tensor

FLT_MIN = 1.1754943508222875e-38  # the clamp of mmcv's kernel: log(max(p, FLT_MIN))
_FORCED = False
_PATCHED_MODULES = ('mmcv.ops.nms', 'mmcv.ops.roi_align', 'mmcv.ops.focal_loss')


# ------------------------------------------------------------------------------------------------
# The stand-in kernels (same signature and out-parameters as mmcv._ext's)
# ------------------------------------------------------------------------------------------------
def nms_kernel(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int = 0) -> Tensor:
    """Indices of the boxes kept by NMS, highest score first (``mmcv._ext.nms``).

    Args:
        boxes: (N, 4) boxes ``x1, y1, x2, y2``.
        scores: (N,) scores.
        iou_threshold: boxes overlapping a kept box by IoU ``> iou_threshold`` are dropped.
        offset: 0, or 1 for mmcv's legacy pixel convention (``w = x2 - x1 + 1``).

    Returns:
        (K,) long indices into ``boxes``.
    """
    from torchvision.ops import nms
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    boxes = boxes.float()
    if offset:
        boxes = boxes + boxes.new_tensor([0., 0., float(offset), float(offset)])
    return nms(boxes, scores.float(), float(iou_threshold))


def _require_avg_pool(pool_mode: int) -> None:
    if pool_mode != 1:
        raise NotImplementedError(
            "RoIAlign(pool_mode='max') has no torchvision kernel, and mmcv here has no CUDA ops; use "
            "pool_mode='avg' (mmdet's default) or build mmcv with CUDA (README: GPU set-up)")


def roi_align_forward_kernel(input: Tensor, rois: Tensor, output: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                             aligned_height: int, aligned_width: int, spatial_scale: float, sampling_ratio: int,
                             pool_mode: int, aligned: bool) -> None:
    """``mmcv._ext.roi_align_forward`` with torchvision: fills ``output`` (K, C, h, w) in place.

    Args:
        input: (N, C, H, W) features.
        rois: (K, 5) ``batch_index, x1, y1, x2, y2`` in input-image coordinates.
        output: (K, C, aligned_height, aligned_width), written.
        argmax_y, argmax_x: used by ``pool_mode=0`` (max) only, which is refused.
        aligned_height, aligned_width: output size.
        spatial_scale: feature stride inverse (coordinates are multiplied by it).
        sampling_ratio: sample points per bin side; 0 = adaptive ``ceil(roi_size / output_size)``.
        pool_mode: 1 (avg); 0 (max) raises.
        aligned: half-pixel shift (True) or the legacy >= 1 pixel clamp (False).
    """
    from torchvision.ops import roi_align
    _require_avg_pool(pool_mode)
    if rois.numel():
        output.copy_(roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width), spatial_scale,
                               sampling_ratio, aligned))


def roi_align_backward_kernel(grad_output: Tensor, rois: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                              grad_input: Tensor, aligned_height: int, aligned_width: int, spatial_scale: float,
                              sampling_ratio: int, pool_mode: int, aligned: bool) -> None:
    """``mmcv._ext.roi_align_backward`` with torchvision's kernel: adds into ``grad_input`` (N, C, H, W)."""
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    _require_avg_pool(pool_mode)
    if not rois.numel():
        return
    n, c, h, w = grad_input.shape
    grad_input += torch.ops.torchvision._roi_align_backward(
        grad_output, rois.to(grad_output.dtype), spatial_scale, aligned_height, aligned_width, n, c, h, w,
        sampling_ratio, aligned).to(grad_input.dtype)


def _focal_terms(input: Tensor, target: Tensor, weight: Tensor) -> tuple:
    """(p, positive mask, per-element class weight) of mmcv's sigmoid focal loss; ``target == C`` is background."""
    num_classes = input.shape[1]
    classes = torch.arange(num_classes, device=input.device)
    positive = target[:, None] == classes[None, :]
    p = torch.sigmoid(input if input.dtype in (torch.float32, torch.float64) else input.float())  # fp32 math
    if weight.numel() == 0:
        return p, positive, None
    if bool((target >= num_classes).any()):
        raise ValueError('sigmoid_focal_loss with a class weight needs every target < num_classes '
                         f'({num_classes}); mmcv indexes weight[target] (out of bounds for background)')
    return p, positive, weight.to(p.dtype)[target][:, None]


def sigmoid_focal_loss_forward_kernel(input: Tensor, target: Tensor, weight: Tensor, output: Tensor,
                                      gamma: float, alpha: float) -> None:
    """Element-wise sigmoid focal loss (Lin et al. 2017, Eq. 5), mmcv's CUDA kernel in torch.

    ``loss = -alpha (1-p)^gamma log p`` for the target class, ``-(1-alpha) p^gamma log(1-p)`` for the others.

    Args:
        input: (N, C) logits.
        target: (N,) long class indices in ``[0, C]`` (C = background).
        weight: (C,) per-class weights, or an empty tensor.
        output: (N, C), written.
        gamma, alpha: focusing and balance parameters.
    """
    p, positive, w = _focal_terms(input, target, weight)
    term_p = (1 - p).pow(gamma) * p.clamp(min=FLT_MIN).log()
    term_n = p.pow(gamma) * (1 - p).clamp(min=FLT_MIN).log()
    loss = torch.where(positive, -alpha * term_p, -(1 - alpha) * term_n)
    output.copy_(loss if w is None else loss * w)


def sigmoid_focal_loss_backward_kernel(input: Tensor, target: Tensor, weight: Tensor, grad_input: Tensor,
                                       gamma: float, alpha: float) -> None:
    """d loss / d input of :func:`sigmoid_focal_loss_forward_kernel`, element-wise into ``grad_input``."""
    p, positive, w = _focal_terms(input, target, weight)
    term_p = (1 - p).pow(gamma) * (1 - p - gamma * p * p.clamp(min=FLT_MIN).log())
    term_n = p.pow(gamma) * (gamma * (1 - p) * (1 - p).clamp(min=FLT_MIN).log() - p)
    grad = torch.where(positive, -alpha * term_p, -(1 - alpha) * term_n)
    grad_input.copy_(grad if w is None else grad * w)


STAND_INS: Dict[str, Callable] = dict(
    nms=nms_kernel,
    roi_align_forward=roi_align_forward_kernel,
    roi_align_backward=roi_align_backward_kernel,
    sigmoid_focal_loss_forward=sigmoid_focal_loss_forward_kernel,
    sigmoid_focal_loss_backward=sigmoid_focal_loss_backward_kernel,
)


# ------------------------------------------------------------------------------------------------
# Dispatch
# ------------------------------------------------------------------------------------------------
def mmcv_cuda_version() -> Optional[str]:
    """The CUDA version mmcv's ops were compiled with, or None (mmcv without CUDA ops or without ops)."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        version = get_compiling_cuda_version()
    except (ImportError, AttributeError):
        return None
    return None if version in ('', 'not available', None) else str(version)


_MMCV_HAS_CUDA: Optional[bool] = None


def mmcv_has_cuda_ops() -> bool:
    """True when mmcv's ops were compiled with CUDA (cached)."""
    global _MMCV_HAS_CUDA
    if _MMCV_HAS_CUDA is None:
        _MMCV_HAS_CUDA = mmcv_cuda_version() is not None
    return _MMCV_HAS_CUDA


def uses_stand_in(tensor: Tensor) -> bool:
    """Whether a kernel call on ``tensor`` goes to torchvision: CUDA tensors when mmcv lacks CUDA ops, or forced."""
    return _FORCED or (tensor.is_cuda and not mmcv_has_cuda_ops())


@contextlib.contextmanager
def force_fallback() -> Iterator[None]:
    """Route every tensor (CPU included) through the stand-ins meanwhile (tests, comparisons)."""
    global _FORCED
    previous, _FORCED = _FORCED, True
    try:
        yield
    finally:
        _FORCED = previous


class DispatchingExt:
    """Stands in for ``mmcv._ext`` inside one ``mmcv.ops`` module.

    The kernels named in :data:`STAND_INS` go to the stand-in when :func:`uses_stand_in` says so for
    their first tensor argument, and to mmcv's kernel otherwise; every other attribute is mmcv's.

    Args:
        ext: the module's original ``ext_module`` (``mmcv._ext``).
    """

    def __init__(self, ext) -> None:
        self.ext = ext

    def __getattr__(self, name: str):
        kernel = getattr(self.ext, name)
        stand_in = STAND_INS.get(name)
        if stand_in is None:
            return kernel

        def dispatch(first: Tensor, *args, **kwargs):
            return (stand_in if uses_stand_in(first) else kernel)(first, *args, **kwargs)
        dispatch.__name__ = name
        setattr(self, name, dispatch)  # found directly from now on
        return dispatch


def apply() -> List[str]:
    """Install :class:`DispatchingExt` in mmcv's nms, roi_align and focal_loss modules (idempotent).

    Returns:
        What was patched (empty where ``mmcv.ops`` does not import, e.g. mmcv-lite).
    """
    patched = []
    for name in _PATCHED_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return []
        if not isinstance(module.ext_module, DispatchingExt):
            module.ext_module = DispatchingExt(module.ext_module)
        patched.append(name)
    return ['mmcv.ops nms/roi_align/sigmoid_focal_loss: torchvision kernels for CUDA tensors when mmcv has no '
            'CUDA ops'] if patched else []


def ops_path(cuda_available: Optional[bool] = None, mmcv_cuda: Optional[str] = None) -> str:
    """One line saying which kernels this machine's detection ops use on GPU tensors.

    Args:
        cuda_available: ``torch.cuda.is_available()`` by default.
        mmcv_cuda: mmcv's compiling CUDA version (:func:`mmcv_cuda_version` by default; '' = none).

    Returns:
        A human-readable line (printed by ``python -m mmkd_ext.compat``, ``make env`` and the GPU check).
    """
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if mmcv_cuda is None:
        mmcv_cuda = mmcv_cuda_version() or ''
    if mmcv_cuda:
        return f'mmcv CUDA ops (mmcv compiled with CUDA {mmcv_cuda}): nms, RoIAlign, focal loss run mmcv kernels'
    if not cuda_available:
        return 'CPU only (no CUDA device): nms and RoIAlign run mmcv CPU kernels, focal loss mmdet\'s torch version'
    return ('torchvision fallback (mmcv compiled without CUDA): nms/batched_nms and RoIAlign on CUDA tensors run '
            'torchvision kernels, sigmoid focal loss runs in torch; other mmcv CUDA ops are unavailable')
