"""Input sizes of the config check (``--shrink``): smaller images and batches, the same models and pipeline steps."""
from __future__ import annotations

from typing import Any, Iterator

from mmengine.config import Config

from ..run_plans import plan_for
from .shorten import LOADERS

SIZE_KEYS = ('scale', 'scales', 'img_scale', 'crop_size', 'size', 'input_size')
SHRINK_TARGET = {'classification': 64, 'detection': 160, 'segmentation': 128}


def task_of(cfg: Config) -> str:
    text = cfg.pretty_text
    if 'CocoDataset' in text or 'data/demo/shapes' in text:
        return 'detection'
    if 'CityscapesDataset' in text or "'mmseg'" in text:
        return 'segmentation'
    return 'classification'


def _sizes_below(node: Any) -> Iterator[int]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SIZE_KEYS:
                yield from _ints(value)
            else:
                yield from _sizes_below(value)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _sizes_below(v)


def _ints(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _ints(v)


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return max(16, int(round(value * factor / 16)) * 16) if value > 1 else value
    if isinstance(value, list):
        return [_scaled(v, factor) for v in value]
    if isinstance(value, tuple):
        return tuple(_scaled(v, factor) for v in value)
    return value


def _scale_sizes(node: Any, factor: float) -> None:
    if isinstance(node, dict):
        for key in list(node.keys()):
            if key in SIZE_KEYS and not isinstance(node[key], dict):
                node[key] = _scaled(node[key], factor)
            else:
                _scale_sizes(node[key], factor)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _scale_sizes(v, factor)


def shrink(cfg: Config, batch_size: int = 2) -> str:
    """``--shrink``: smaller input sizes (largest side ~ :data:`SHRINK_TARGET` of the task), batch ``batch_size``,
    no DataLoader workers. Models and pipeline steps are unchanged.

    Returns:
        A one-line description of what was shrunk.
    """
    task = task_of(cfg)
    # the plan's own loaders count too: a search config has no loaders of its own, its proxy's fitness loader sets
    # the factor (unscaled, a Cityscapes search check ran its fitness at 2048x1024: 8 min)
    keys = [key for key in list(LOADERS) + list(plan_for(cfg).size_keys) if key in cfg]
    sizes = [s for key in keys for s in _sizes_below(cfg[key])]
    largest = max(sizes, default=0)
    factor = min(1.0, SHRINK_TARGET[task] / largest) if largest and not _keeps_input_size(cfg) else 1.0
    floor = _shortest_side_needed(cfg)
    if floor and sizes and min(sizes) * factor < floor:
        factor = min(1.0, floor / min(sizes))
    if factor < 1.0:
        for key in keys:
            _scale_sizes(cfg[key], factor)
        # the top-level data_preprocessor too: MMEngine's Runner gives it to a model that sets none (mmseg
        # bases define one with size=crop_size; an algorithm built with _delete_ inherits it)
        for holder in _data_preprocessors({'model': cfg.get('model', {}),
                                           'data_preprocessor': cfg.get('data_preprocessor')}):
            _scale_sizes(holder, factor)
        _scale_model_input_shapes(cfg.get('model', {}), factor)
    for key in LOADERS:
        loader = cfg.get(key)
        if isinstance(loader, dict) and 'batch_size' in loader:
            loader['batch_size'] = min(loader['batch_size'], batch_size)
    return f'{task}: sizes x{factor:.3f} (largest {largest} px), batch <= {batch_size}'


def _scale_model_input_shapes(node: Any, factor: float) -> None:
    """Model-level input sizes: ``input_size=(H, W)``, ``input_shape=(C, H, W)`` (a pruner's FLOP count) and the
    window of mmseg's sliding-window inference (``test_cfg=dict(mode='slide', crop_size, stride)``)."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            value = node[key]
            if key == 'input_size' and isinstance(value, (list, tuple)):
                node[key] = _scaled(value, factor)
            elif key == 'input_shape' and isinstance(value, (list, tuple)) and len(value) == 3:
                node[key] = (value[0], *_scaled(tuple(value[1:]), factor))
            elif key in ('crop_size', 'stride') and node.get('mode') == 'slide':  # mmseg sliding-window inference
                node[key] = _scaled(value, factor)
            else:
                _scale_model_input_shapes(value, factor)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _scale_model_input_shapes(v, factor)


def _keeps_input_size(cfg: Config) -> bool:
    """mmpretrain's Swin needs a last-stage map of at least one 7x7 window at stride 32 (``pad_small_map=False``):
    classification pipelines' 224 px crops stay as they are. mmdet's and mmseg's Swin pad maps to whole windows."""
    return task_of(cfg) == 'classification' and 'SwinTransformer' in cfg.pretty_text


# model parts that need larger inputs than the shrunk sizes -> the shortest input side they need, with the reason
SHORTEST_SIDE_NEEDED = {
    # FBKD's non-local blocks max-pool twice (2, then maxpool_stride 2) on FPN level 3 (stride 32): 4 x 32 px
    'FBKDStudentConnector': 128,
}


def _shortest_side_needed(cfg: Config) -> int:
    text = cfg.pretty_text
    return max([side for part, side in SHORTEST_SIDE_NEEDED.items() if part in text], default=0)


def _data_preprocessors(model: Any) -> Iterator[dict]:
    if isinstance(model, dict):
        for key, value in model.items():
            if key == 'data_preprocessor' and isinstance(value, dict):
                yield value
            else:
                yield from _data_preprocessors(value)
    elif isinstance(model, (list, tuple)):
        for v in model:
            yield from _data_preprocessors(v)


