"""The student as an ONNX file, checked against PyTorch by onnxruntime.

:func:`export_student` builds a student from its own config and checkpoint (what
``tools/model_converters/extract_student.py`` writes, or AMD's / ACMKD's exported ``<name>.py`` + ``<name>.pth``),
wraps it in :class:`DeployedStudent` and exports it with PyTorch's TorchScript exporter (``dynamo=False``: the
OpenMMLab models trace; ``torch.export`` needs ``onnxscript`` and fails on their data-dependent Python) with a
dynamic batch axis. The graph takes ``images``: float32 ``N x 3 x H x W`` pixels in 0..255, in the channel order
the test pipeline loads them (BGR for mmcv's ``LoadImageFromFile``), already resized / cropped by the test pipeline;
the data preprocessor's channel flip and mean/std normalisation are inside the graph. Outputs:

- classification: ``logits`` (the head's class scores before softmax) or ``scores`` (softmax; sigmoid for
  multi-label heads);
- segmentation: ``seg_logits`` (or ``seg_scores``), ``N x classes x H x W``: the decode head's logits resized
  (bilinear) to the input, as mmseg's whole-image inference does before cropping padding and resizing to the
  original image;
- single-stage detection: the head's raw per-level outputs (``cls_score_<level>``, ``bbox_pred_<level>``, ...);
  anchor/point decoding, score thresholding and NMS (``bbox_head.predict_by_feat``) are NOT in the graph and run
  outside it. Two-stage detectors (their RoI stage needs proposals from the RPN's post-processing) raise
  :class:`NotExportableError`.

:func:`check_parity` runs onnxruntime (CPU) and PyTorch on the same seeded inputs of several batch sizes and
raises :class:`ParityError` when an output differs by more than ``atol + rtol * |torch|``;
:func:`onnx_stats` reads the exported graph's size: parameters (elements of the floating-point initializers) and
multiply-accumulates of its Conv / Gemm / MatMul nodes per image, with the shapes onnxruntime gives them.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

DEFAULT_OPSET = 17  # LayerNorm is a single op from opset 17; onnxruntime >= 1.14 runs it
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
PARITY_BATCHES = (1, 3, 4)  # the export traces batch 2: other sizes exercise the dynamic axis
# output names of single-stage detection heads by the number of per-level outputs they return
DET_OUTPUTS = {2: ('cls_score', 'bbox_pred'), 3: ('cls_score', 'bbox_pred', 'centerness')}


class NotExportableError(NotImplementedError):
    """The student's model cannot be exported as a whole (what is not exported is in the message)."""


class UnsupportedOpError(NotExportableError, torch.onnx.errors.OnnxExporterError):
    """The TorchScript exporter has no ONNX form of an operator at this input size (its message kept, advice added)."""


class ParityError(AssertionError):
    """onnxruntime's outputs differ from PyTorch's by more than the tolerance."""


# -- building the student ----------------------------------------------------------------------------------------
def load_student(config: str, checkpoint: Optional[str] = None) -> Tuple[nn.Module, Config]:
    """The student model of a student config with its weights, in eval mode, on the CPU.

    Args:
        config: the student's own config (``extract_student.py``'s ``<name>.py``, AMD's / ACMKD's export).
        checkpoint: its weights; default: the config's ``load_from``.

    Returns:
        ``(model, cfg)``.
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint
    cfg = Config.fromfile(config)
    checkpoint = checkpoint or cfg.get('load_from')
    if not checkpoint:
        raise ValueError(f'no checkpoint for {config!r}: give one (the config has no load_from)')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    init_default_scope(cfg.get('default_scope') or cfg.model.get('_scope_', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.eval(), cfg


def task_of(model: nn.Module) -> str:
    """``'cls'``, ``'seg'`` or ``'det'``: which task package's model this is (or derives from)."""
    for base in type(model).__mro__:
        for package, task in (('mmpretrain', 'cls'), ('mmseg', 'seg'), ('mmdet', 'det')):
            if base.__module__.startswith(package + '.'):
                return task
    raise NotExportableError(f'{type(model).__name__} is not a model of mmpretrain, mmseg or mmdet')


class DeployedStudent(nn.Module):
    """A student as the ONNX graph computes it: normalisation, network, task output (see module docstring).

    Args:
        model: the student (eval mode).
        output: ``'logits'`` or ``'scores'`` (classification and segmentation; detection gives raw head outputs).
    """

    def __init__(self, model: nn.Module, output: str = 'logits') -> None:
        super().__init__()
        if output not in ('logits', 'scores'):
            raise ValueError(f"output must be 'logits' or 'scores', not {output!r}")
        self.model = model
        self.task = task_of(model)
        self.output = output
        if self.task == 'det' and (not hasattr(model, 'bbox_head') or hasattr(model, 'rpn_head')):
            raise NotExportableError(
                f'{type(model).__name__} is not exported: only single-stage detectors (backbone + neck + '
                'bbox_head raw outputs) are; a two-stage RoI head needs the RPN post-processing (NMS) inside the '
                'graph')
        pre = getattr(model, 'data_preprocessor', None)
        normalize = bool(getattr(pre, '_enable_normalize', False))
        flip = bool(getattr(pre, '_channel_conversion', getattr(pre, 'channel_conversion', False)))
        mean = pre.mean.detach().reshape(1, -1, 1, 1).clone() if normalize else torch.zeros(1, 3, 1, 1)
        std = pre.std.detach().reshape(1, -1, 1, 1).clone() if normalize else torch.ones(1, 3, 1, 1)
        self.register_buffer('mean', mean.float())
        self.register_buffer('std', std.float())
        self.flip_channels = flip
        self.eval()

    def output_names(self, images: torch.Tensor) -> List[str]:
        """Names of the graph outputs, in the order :meth:`forward` returns them for ``images``."""
        if self.task == 'cls':
            return [self.output]
        if self.task == 'seg':
            return ['seg_' + self.output]
        with torch.no_grad():
            per_kind = self.model._forward(self.normalize(images))
        kinds = DET_OUTPUTS.get(len(per_kind), tuple(f'out{k}' for k in range(len(per_kind))))
        return [f'{kind}_{level}' for kind, levels in zip(kinds, per_kind) for level in range(len(levels))]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """What the data preprocessor does to a batch at test time: channel flip, ``(x - mean) / std``."""
        x = images[:, [2, 1, 0]] if self.flip_channels else images
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Outputs of the student on ``images`` (pixels 0..255, see module docstring)."""
        x = self.normalize(images)
        if self.task == 'cls':
            return (self._classify(x), )
        if self.task == 'seg':
            return (self._segment(x), )
        return self._detect(x)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x, mode='tensor')
        if self.output == 'logits':
            return logits
        return logits.sigmoid() if 'MultiLabel' in type(self.model.head).__name__ else logits.softmax(dim=1)

    def _segment(self, x: torch.Tensor) -> torch.Tensor:
        head = self.model.decode_head
        logits = F.interpolate(self.model._forward(x), size=x.shape[2:], mode='bilinear',
                               align_corners=head.align_corners)
        if self.output == 'logits':
            return logits
        return logits.sigmoid() if head.out_channels == 1 else logits.softmax(dim=1)

    def _detect(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        per_kind = self.model._forward(x)
        return tuple(t for kind in per_kind for t in kind)


# -- export, parity, size -----------------------------------------------------------------------------------------
def export_onnx(module: DeployedStudent, path: str, input_size: Tuple[int, int], batch: int = 2,
                opset: int = DEFAULT_OPSET) -> List[str]:
    """Export ``module`` to ``path`` with a dynamic batch axis (TorchScript exporter, see module docstring).

    Args:
        module: the wrapped student.
        path: output ``.onnx`` file.
        input_size: ``(H, W)`` of the input images (fixed in the graph).
        batch: batch size of the traced example (the batch axis stays dynamic).
        opset: ONNX opset.

    Returns:
        The output names.
    """
    example = torch.rand(batch, 3, *input_size, generator=torch.Generator().manual_seed(0)) * 255
    names = module.output_names(example)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # the TorchScript exporter's deprecation notice and tracer warnings
        try:
            torch.onnx.export(module, (example, ), path, dynamo=False, opset_version=opset, input_names=['images'],
                              output_names=names, dynamic_axes={n: {0: 'batch'} for n in ['images', *names]})
        except torch.onnx.errors.OnnxExporterError as error:
            advice = ''
            if 'adaptive_avg_pool2d' in str(error):  # PSPNet's pyramid pooling (bins 1, 2, 3, 6)
                advice = (' Pick --input-size so that the pooled feature map divides by every pooling bin (PSPNet, '
                          'output stride 8: H and W multiples of 48, e.g. 144 288).')
            raise UnsupportedOpError(f'{error}{advice}') from error
    return names


@dataclass
class Parity:
    """The comparison of onnxruntime with PyTorch.

    Attributes:
        max_abs: largest ``|onnx - torch|`` over all outputs and inputs.
        max_rel: ``max_abs`` over the largest ``|torch|`` of that output.
        atol, rtol: the tolerance: an element fails when ``|onnx - torch| > atol + rtol * |torch|``.
        batches: the batch sizes run.
        failures: ``'<output> (batch <n>): ...'`` for every failing comparison.
    """
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    batches: Tuple[int, ...]
    failures: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        verdict = 'FAILED' if self.failures else 'ok'
        return (f'parity onnxruntime vs PyTorch ({len(self.batches)} seeded inputs, batches {list(self.batches)}): '
                f'max abs diff {self.max_abs:.3g}, max rel diff {self.max_rel:.3g} '
                f'(tolerance |d| <= {self.atol:g} + {self.rtol:g}*|torch|): {verdict}')


def ort_session(path: str):
    """An onnxruntime CPU session of ``path`` using as many threads as torch does."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def check_parity(module: DeployedStudent, path: str, input_size: Tuple[int, int],
                 batches: Sequence[int] = PARITY_BATCHES, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
                 seed: int = 0, raise_on_failure: bool = True) -> Parity:
    """Run onnxruntime and PyTorch on the same seeded images (one input per batch size in ``batches``).

    Args:
        module: the wrapped student that was exported.
        path: its ONNX file.
        input_size: ``(H, W)``.
        batches: batch sizes (one seeded input each: seed ``seed + i``).
        atol, rtol: tolerance (see :class:`Parity`).
        seed: first seed.
        raise_on_failure: raise :class:`ParityError` when an element is out of tolerance.

    Returns:
        The :class:`Parity`.
    """
    module.eval()  # (the TorchScript exporter restores the training flag the module had before the export)
    session = ort_session(path)
    names = [o.name for o in session.get_outputs()]
    max_abs = max_rel = 0.0
    failures = []
    for i, n in enumerate(batches):
        images = torch.rand(n, 3, *input_size, generator=torch.Generator().manual_seed(seed + i)) * 255
        with torch.no_grad():
            expected = [t.numpy() for t in module(images)]
        got = session.run(names, {'images': images.numpy()})
        for name, ref, out in zip(names, expected, got):
            if ref.shape != out.shape:
                failures.append(f'{name} (batch {n}): shape {out.shape} instead of {ref.shape}')
                continue
            diff = np.abs(out.astype(np.float64) - ref)
            max_abs = max(max_abs, float(diff.max()))
            max_rel = max(max_rel, float(diff.max() / max(np.abs(ref).max(), 1e-12)))
            bad = diff > atol + rtol * np.abs(ref)
            if bad.any():
                failures.append(f'{name} (batch {n}): {int(bad.sum())} of {bad.size} elements out of tolerance, '
                                f'max abs diff {diff.max():.3g}')
    parity = Parity(max_abs, max_rel, atol, rtol, tuple(batches), failures)
    if failures and raise_on_failure:
        raise ParityError(f'{path}: onnxruntime does not reproduce PyTorch: ' + '; '.join(failures) +
                          f'. {parity}. Raise --atol/--rtol only if the differences are numerical noise.')
    return parity


COUNTED_OPS = ('Conv', 'Gemm', 'MatMul')


def _one_image_shapes(model) -> Dict[str, List[int]]:
    """Shapes of the inputs and outputs of the graph's Conv / Gemm / MatMul nodes for one image: onnxruntime runs
    the graph (the batch axis set to 1) with those values added as graph outputs; initializers by their dims."""
    import onnx
    graph = model.graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    wanted = {name for node in graph.node if node.op_type in COUNTED_OPS
              for name in (node.input[0], node.input[1], node.output[0]) if name not in shapes}
    present = {o.name for o in graph.output}
    graph.output.extend(onnx.ValueInfoProto(name=name) for name in sorted(wanted - present))
    import onnxruntime as ort
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    feeds = {}
    for value in session.get_inputs():
        shape = [1 if not isinstance(d, int) else d for d in value.shape]
        feeds[value.name] = np.zeros(shape, dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    shapes.update({name: list(out.shape) for name, out in zip(names, session.run(names, feeds))})
    return shapes


def _reduced(node, shapes: Dict[str, List[int]]) -> int:
    """Length of the dot product behind each output element of a Conv / Gemm / MatMul node."""
    if node.op_type == 'Conv':  # weight M x C/groups x kh x kw
        return int(np.prod(shapes[node.input[1]][1:]))
    if node.op_type == 'Gemm':  # A is M x K, or K x M with transA
        trans_a = any(a.name == 'transA' and a.i for a in node.attribute)
        return shapes[node.input[0]][0 if trans_a else 1]
    return shapes[node.input[0]][-1]  # MatMul: A ... x K


def onnx_stats(path: str) -> Dict[str, float]:
    """Size of an exported graph, read from the ONNX file alone (no PyTorch model involved).

    Args:
        path: the ONNX file (one input, float32).

    Returns:
        ``{'params': elements of the floating-point initializers, 'macs': multiply-accumulates of the Conv, Gemm
        and MatMul nodes for one image (output elements times the length of their dot products, the shapes from
        running the graph with onnxruntime on one image), 'megabytes': file size}``.
    """
    import onnx
    from onnx import TensorProto
    model = onnx.load(path)
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats)
    nodes = [node for node in model.graph.node if node.op_type in COUNTED_OPS]
    shapes = _one_image_shapes(model)
    macs = sum(int(np.prod(shapes[node.output[0]])) * _reduced(node, shapes) for node in nodes)
    return dict(params=params, macs=macs, megabytes=osp.getsize(path) / 2**20)


# -- the whole step ----------------------------------------------------------------------------------------------
def input_size_of(cfg: Config, model: nn.Module) -> Tuple[int, int]:
    """``(H, W)`` the student sees at test time: the first test item's packed image, else the backbone's
    ``img_size``; an error asks for ``--input-size`` when neither is known."""
    try:
        from mmengine.registry import DATASETS
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        return tuple(dataset[0]['inputs'].shape[-2:])
    except Exception as error:  # no data on this machine: fall back to the model
        size = getattr(getattr(model, 'backbone', None), 'img_size', None)
        if size is not None:
            return (size, size) if isinstance(size, int) else tuple(size)
        raise ValueError('the input size is unknown: the test dataset did not load '
                         f'({type(error).__name__}: {error}) and the backbone has no img_size; give --input-size H W'
                         ) from error


@dataclass
class Deployment:
    """What :func:`export_student` wrote and measured."""
    path: str
    input_size: Tuple[int, int]
    outputs: List[str]
    parity: Parity
    stats: Dict[str, float]
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        return '\n  '.join([
            f'{self.path}: input images N x 3 x {self.input_size[0]} x {self.input_size[1]} (N dynamic), outputs '
            f'{self.outputs}; {self.stats["params"] / 1e6:.4g} M parameters, {self.stats["macs"] / 1e6:.4g} M MACs '
            f'per image, {self.stats["megabytes"]:.3g} MiB', str(self.parity), *self.notes])


def notes_of(module: DeployedStudent) -> List[str]:
    """What a user of the graph must do outside it, beyond resizing and batching images."""
    test_cfg = getattr(module.model, 'test_cfg', None) or {}
    if module.task == 'seg' and test_cfg.get('mode') == 'slide':
        crop, stride = test_cfg.get('crop_size'), test_cfg.get('stride')
        return [f"note: the config tests with sliding windows (test_cfg.mode='slide', crop {crop}, stride {stride}); "
                'the graph computes whole-input logits: export at the crop size (--input-size), slide outside it']
    if module.task == 'det':
        return ['note: raw head outputs; decode them with the bbox coder / priors of the config and run NMS outside '
                "the graph (mmdet's bbox_head.predict_by_feat does both)"]
    return []


def export_student(config: str, checkpoint: Optional[str], path: str, input_size: Optional[Sequence[int]] = None,
                   opset: int = DEFAULT_OPSET, batch: int = 2, output: str = 'logits', atol: float = DEFAULT_ATOL,
                   rtol: float = DEFAULT_RTOL) -> Deployment:
    """Export a student to ONNX and check it against PyTorch (see module docstring).

    Args:
        config: the student's own config.
        checkpoint: its weights (default: the config's ``load_from``).
        path: output ``.onnx``.
        input_size: ``(H, W)``; default: :func:`input_size_of`.
        opset: ONNX opset.
        batch: batch size of the traced example.
        output: ``'logits'`` or ``'scores'``.
        atol, rtol: parity tolerance; above it :class:`ParityError` is raised (the file stays for inspection).

    Returns:
        The :class:`Deployment`.
    """
    model, cfg = load_student(config, checkpoint)
    module = DeployedStudent(model, output).eval()
    size = tuple(int(s) for s in input_size) if input_size else input_size_of(cfg, model)
    names = export_onnx(module, path, size, batch, opset)
    parity = check_parity(module, path, size, atol=atol, rtol=rtol)
    return Deployment(path, size, names, parity, onnx_stats(path), notes_of(module))


def add_onnx_args(parser: argparse.ArgumentParser) -> None:
    """The export options shared by ``extract_student.py --onnx`` and ``tools/deployment/export_onnx.py``."""
    group = parser.add_argument_group('ONNX export')
    group.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (default %(default)s)')
    group.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                       help="input height and width (default: the test pipeline's first image, or the backbone's "
                       'img_size)')
    group.add_argument('--batch', type=int, default=2, help='batch of the traced example; the axis stays dynamic')
    group.add_argument('--output', choices=('logits', 'scores'), default='logits',
                       help='classification / segmentation output (detection: raw head outputs)')
    group.add_argument('--atol', type=float, default=DEFAULT_ATOL, help='parity tolerance, absolute')
    group.add_argument('--rtol', type=float, default=DEFAULT_RTOL, help='parity tolerance, relative to |torch|')


def export_from_args(config: str, checkpoint: Optional[str], path: str, args: argparse.Namespace) -> Deployment:
    """:func:`export_student` with the options of :func:`add_onnx_args`; exits with the message on a parity
    failure or a model that is not exported."""
    try:
        report = export_student(config, checkpoint, path, args.input_size, args.opset, args.batch, args.output,
                                args.atol, args.rtol)
    except (ParityError, NotExportableError) as error:  # (UnsupportedOpError is a NotExportableError)
        raise SystemExit(f'ONNX export of {config} failed: {error}') from error
    print(report)
    return report
