"""Run a shipped config end to end on stand-in data: ``python tools/misc/check_config.py CONFIG [--shrink]``.

The check points the config at stand-in data in the real formats (:mod:`mmkd_ext.demo_data.standin`; the built-in
demo data for demo configs), replaces weights that would be downloaded or are missing by random initialisation (one
line per weight, :func:`mmkd_ext.weight_sources.replace_unavailable_weights`), optionally shrinks inputs and batches
(``--shrink``: sizes only, same models and pipeline steps), shortens the schedule to a few iterations, and runs what a
user runs:

* a training config: build, N train iterations, one validation pass with the real metric, checkpoint, ``--resume``
  for one more epoch/iteration, and ``tools/test.py`` on the checkpoint;
* an FKD training config: the matching label config's generation first (the store lands in the work dir);
* an FKD label config: label generation, then the FKD training config that reads that store;
* a KD-Zero search config: a search with two candidates, then a training check of ``best_distiller_config.py``;
* an AMD config: the pipeline through all its stages and the export, then ``tools/test.py`` on the export;
* an ACMKD config: training as above, then the student export.

Each step prints one line with its time and peak memory; the first step that fails ends the check with
:class:`ConfigCheckFailed` naming it (the tool exits non-zero).
"""
from __future__ import annotations

import glob
import itertools
import os
import os.path as osp
import resource
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from mmengine.config import Config

from .config_rules import apply_config_rules
from .data_checks import iter_datasets
from .demo_data import make_cityscapes_scenes, make_digits, make_shapes_coco
from .demo_data.layout import root_lock
from .demo_data.standin import STANDIN_BASE, make_standin, register_standin_datasets, standin_roots
from .weight_sources import replace_unavailable_weights

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_MAKERS = {'data/demo/digits': make_digits, 'data/demo/shapes': make_shapes_coco,
               'data/demo/cityscapes': make_cityscapes_scenes}
SIZE_KEYS = ('scale', 'scales', 'img_scale', 'crop_size', 'size', 'input_size')
SHRINK_TARGET = {'classification': 64, 'detection': 160, 'segmentation': 128}
EVAL_IMAGES = 8
HELD_OUT_EVERY = 2  # held-out splits on stand-in data: every 2nd training image
_LABEL_STORES: Dict[tuple, str] = {}  # label config + check settings -> stand-in store made in this process
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class ConfigCheckFailed(RuntimeError):
    """A step of the config check failed; ``step`` names it."""

    def __init__(self, step: str, message: str):
        super().__init__(f'config check failed at step {step!r}: {message}')
        self.step = step


@dataclass
class StepRecord:
    name: str
    seconds: float
    peak_mb: float
    note: str = ''


@dataclass
class CheckReport:
    config: str
    steps: List[StepRecord] = field(default_factory=list)
    replaced_weights: List[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


# ----------------------------------------------------------------------------------------------- config rewriting
def _rewrite_strings(node: Any, mapping: Dict[str, str]) -> Any:
    """Replace the prefix of every string below ``node`` that starts with a key of ``mapping``."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = _rewrite_strings(node[key], mapping)
        return node
    if isinstance(node, list):
        return [_rewrite_strings(v, mapping) for v in node]
    if isinstance(node, tuple):
        return tuple(_rewrite_strings(v, mapping) for v in node)
    if isinstance(node, str):
        for real, standin in mapping.items():
            if node == real or node.startswith(real.rstrip('/') + '/'):
                return standin + node[len(real.rstrip('/')):]
    return node


def _data_roots_used(cfg: Config) -> List[str]:
    """The real and demo dataset roots named in ``cfg`` (as a whole string or a path prefix)."""
    import re
    text = cfg.pretty_text
    return [r for r in list(standin_roots()) + list(DEMO_MAKERS) if re.search(f'[\'"]{re.escape(r)}[/\'"]', text)]


def point_at_standin_data(cfg: Config, base: str = STANDIN_BASE) -> List[str]:
    """Redirect the real dataset roots of ``cfg`` to generated stand-ins (demo roots: generate the demo data).

    Returns:
        The stand-in roots in use.
    """
    used = []
    mapping = {}
    for root in _data_roots_used(cfg):
        if root in DEMO_MAKERS:
            used.append(DEMO_MAKERS[root](osp.join(ROOT, root)) if not osp.isabs(root) else DEMO_MAKERS[root](root))
        else:
            mapping[root] = standin_roots(base)[root]
            used.append(make_standin(root, base))
    for key in list(cfg.keys()):
        cfg[key] = _rewrite_strings(cfg[key], mapping)
    register_standin_datasets()
    _swap_checksummed_datasets(cfg)
    return used


def _swap_checksummed_datasets(cfg: Config) -> None:
    """CIFAR-100 verifies the md5 of the published files: read stand-ins with ``CIFAR100StandIn`` (README says so)."""
    def visit(d):
        if isinstance(d, dict):
            if str(d.get('type', '')).split('.')[-1] in ('CIFAR100', 'CIFAR10'):
                d['type'] = str(d['type']).split('.')[-1] + 'StandIn'
            for v in d.values():
                visit(v)
        elif isinstance(d, (list, tuple)):
            for v in d:
                visit(v)
    for key in list(cfg.keys()):
        visit(cfg[key])


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
    sizes = [s for key in LOADERS if key in cfg for s in _sizes_below(cfg[key])]
    # a KD-Zero search config has no loaders of its own: its proxy's fitness loader sets the factor (the base config
    # is shrunk by the same rule; unscaled, a Cityscapes search check ran its fitness at 2048x1024: 8 min)
    sizes += [s for key in ('fkd_generation', 'label_dataset', 'proxy') if key in cfg for s in _sizes_below(cfg[key])]
    largest = max(sizes, default=0)
    factor = min(1.0, SHRINK_TARGET[task] / largest) if largest and not _keeps_input_size(cfg) else 1.0
    floor = _shortest_side_needed(cfg)
    if floor and sizes and min(sizes) * factor < floor:
        factor = min(1.0, floor / min(sizes))
    if factor < 1.0:
        for key in list(LOADERS) + ['fkd_generation', 'label_dataset', 'proxy', 'amd']:  # amd: importance loader
            if key in cfg:
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
    """Model-level input sizes: ``input_size=(H, W)`` (ACMKD), ``input_shape=(C, H, W)`` (AMD's FLOP count) and the
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


_VISUALIZER_IDS = itertools.count()


def name_visualizer_uniquely(cfg: Config) -> None:
    """A visualizer name of its own for each checked config. MMEngine keeps one visualizer per class and name per
    process and hands an existing one back; hooks such as MMRazor's ``RazorVisualizationHook`` draw with the latest
    one *created*. A detection check after another detection check and a classification one in the same process got
    the old ``DetLocalVisualizer`` back and its hook the plain ``Visualizer`` (TypeError on ``out_file``)."""
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = f"{cfg.visualizer.get('name') or 'visualizer'}_check{next(_VISUALIZER_IDS)}"


def quiet_loaders(cfg: Config) -> None:
    """No DataLoader worker processes anywhere in the config (a check on a few images; workers add start-up time)."""
    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if 'num_workers' in node:
                node['num_workers'] = 0
                if 'persistent_workers' in node:
                    node['persistent_workers'] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)
    for key in list(cfg.keys()):
        visit(cfg[key])


def zero_score_thresholds(model: Any) -> bool:
    """Set every ``score_thr`` of the model's test settings to 0 (randomly initialised detectors score every box
    below the usual 0.05, COCO evaluation then has no result to score). Returns whether any was set."""
    found = False
    if isinstance(model, dict):
        for key, value in model.items():
            if key == 'score_thr' and isinstance(value, (int, float)):
                model[key] = 0.0
                found = True
            else:
                found = zero_score_thresholds(value) or found
    elif isinstance(model, (list, tuple)):
        for value in model:
            found = zero_score_thresholds(value) or found
    return found


def limit_train_iterations(cfg: Config, iters: int) -> str:
    """Shorten the schedule: epoch-based loops train one epoch of ``iters`` batches, iteration-based ``iters``."""
    train_cfg = cfg.train_cfg
    loader = cfg.train_dataloader
    if train_cfg.get('by_epoch', True) is False or 'Iter' in str(train_cfg.get('type', '')):
        limit_evaluation_images(cfg)
        train_cfg.max_iters = iters
        train_cfg.val_interval = iters
        return f'{iters} iterations' + start_late_phases_at_zero(cfg, epochs=0, iters=iters)
    images = iters * loader.batch_size * (HELD_OUT_EVERY if shorten_held_out_split(cfg) else 1)
    wrapper = str(loader.dataset.get('type', '')).split('.')[-1]
    if wrapper in WHOLE_SPLIT_WRAPPERS:
        note = f'1 epoch of the whole training split ({wrapper} {WHOLE_SPLIT_WRAPPERS[wrapper]})'
    else:
        for leaf in iter_datasets(loader.dataset):
            leaf['indices'] = images
        note = f'1 epoch of {iters} iterations ({images} images)'
    limit_evaluation_images(cfg)
    crops = _crops_per_image(cfg)
    train_cfg.max_epochs = crops
    train_cfg.val_interval = crops
    return (note + (f', {crops} crop-epochs' if crops > 1 else '')
            + start_late_phases_at_zero(cfg, epochs=crops, iters=crops * iters))


def _scheduler_phases(node: Any) -> Iterator[dict]:
    """The phases of ``param_scheduler``: a phase, a list of them, or a dict of those per optimizer (DAFL)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _scheduler_phases(item)
    elif isinstance(node, dict):
        if 'type' in node:
            yield node
        else:
            for key, value in node.items():
                if key != '_delete_':
                    yield from _scheduler_phases(value)


# training-set wrappers that need the whole (stand-in) split, with the reason
WHOLE_SPLIT_WRAPPERS = {
    # MMRazor's CRD sampler stacks per-class index lists into one array: classes of unequal size (a few images out
    # of ten classes) are a ragged array numpy refuses; the stand-in CIFAR-10 has 2 images of each class
    'CRDDataset': 'needs classes of equal size',
}


def start_late_phases_at_zero(cfg: Config, epochs: int, iters: int) -> str:
    """Schedule phases that begin after the shortened schedule ends (``PolyLR(by_epoch=False, begin=5000)`` after
    a 5000-iteration warm-up) begin at 0 instead, so they are built and stepped: MMEngine gives a phase without
    ``end`` the schedule's end, and ``begin >= end`` is an error. Returns a note naming them ('' if none)."""
    moved = []
    for phase in _scheduler_phases(cfg.get('param_scheduler')):
        length = epochs if phase.get('by_epoch', True) else iters
        if phase.get('begin', 0) >= length > 0:
            moved.append(f"{phase.get('type')}(begin={phase['begin']})")
            phase['begin'] = 0
    return f'; {", ".join(moved)} begin at 0' if moved else ''


def shorten_held_out_split(cfg: Config) -> bool:
    """Hold out 1 training image in :data:`HELD_OUT_EVERY` (stand-in training sets have a handful of images):
    ``HeldOutSubset`` datasets and AMD's selection split. Returns whether the config holds images out."""
    found = False

    def visit(node: Any) -> None:
        nonlocal found
        if isinstance(node, dict):
            if str(node.get('type', '')).split('.')[-1] == 'HeldOutSubset':
                node['every'] = HELD_OUT_EVERY
                found = True
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)
    for key in LOADERS:
        visit(cfg.get(key))
    if 'amd' in cfg:
        cfg.amd['selection'] = dict(cfg.amd.get('selection') or {}, held_out_every=HELD_OUT_EVERY)
        found = True
    return found


def limit_evaluation_images(cfg: Config, images: int = EVAL_IMAGES) -> None:
    """Validate and test on the first ``images`` images (the demo sets have hundreds)."""
    for key in ('val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            for leaf in iter_datasets(loader['dataset']):
                leaf['indices'] = images


def limit_importance_samples(amd: dict, samples: int, batch_size: int = 2) -> None:
    """AMD's importance stage on ``samples`` training images in batches of ``batch_size`` (the configs ask for 2048
    per-example gradients: on every stand-in image, the ViT-B check spent minutes there)."""
    importance = amd.setdefault('importance', {})
    importance['max_samples'] = min(importance.get('max_samples') or samples, samples)
    loader = importance.get('dataloader')
    if isinstance(loader, dict) and 'batch_size' in loader:
        loader['batch_size'] = min(loader['batch_size'], batch_size)


def _crops_per_image(cfg: Config) -> int:
    dataset = cfg.train_dataloader.dataset
    return int(dataset.get('crops_per_image', 1)) if 'FKD' in str(cfg.train_cfg.get('type', '')) else 1


def extend_schedule(cfg: Config) -> None:
    """One more epoch (or iteration) than :func:`limit_train_iterations` set, for the resume step."""
    train_cfg = cfg.train_cfg
    if 'max_iters' in train_cfg and not train_cfg.get('max_epochs'):
        train_cfg.max_iters += 1
    else:
        train_cfg.max_epochs += _crops_per_image(cfg)


# -------------------------------------------------------------------------------------------------------- steps
def _peak_mb(device: str) -> float:
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _step(report: CheckReport, name: str, device: str, log: Callable[[str], None]):
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    record = StepRecord(name, 0.0, 0.0)
    try:
        yield record
    except Exception as exc:  # noqa: BLE001 - every failure names its step
        log(f'[check] {name:<10} FAILED after {time.perf_counter() - start:.1f} s: {type(exc).__name__}: {exc}')
        raise ConfigCheckFailed(name, f'{type(exc).__name__}: {exc}\n{traceback.format_exc()}') from exc
    record.seconds = time.perf_counter() - start
    record.peak_mb = _peak_mb(device)
    report.steps.append(record)
    log(f'[check] {name:<10} ok {record.seconds:6.1f} s  peak {record.peak_mb:7.0f} MB  {record.note}')


def kind_of(cfg: Config) -> str:
    """Which job a config describes: ``search`` | ``labels`` | ``amd`` | ``fkd`` | ``acmkd`` | ``train``."""
    if 'search' in cfg and 'base_config' in cfg:
        return 'search'
    if 'teachers' in cfg and 'fkd_generation' in cfg:
        return 'labels'
    if 'amd' in cfg:
        return 'amd'
    model_type = str(cfg.get('model', {}).get('type', ''))
    if 'FKD' in str(cfg.get('train_cfg', {}).get('type', '')):
        return 'fkd'
    if model_type.endswith('ACMKD') or 'ACMKD' in model_type:
        return 'acmkd'
    return 'train'


class ConfigCheck:
    """The check of one config (see the module docstring).

    Args:
        config: path of the config file.
        work_dir: where runs, checkpoints and generated files go.
        device: ``cpu`` or ``cuda``.
        iters: training iterations of the short schedule.
        shrink_inputs: apply :func:`shrink`.
        standin_base: root of the stand-in datasets.
        cfg_options: extra ``--cfg-options`` applied after loading.
        log: where the step lines go.
        train_only: stop a training config's check after the train step (build + N iterations).
        keep_checkpoints: keep the checkpoints the check wrote. By default they are deleted when the check ends
            (passed or failed): they hold random or stand-in weights, and a detection or AMD check writes several
            GB of them (a run over every config would fill a disk).
    """

    def __init__(self, config: str, work_dir: str, device: str = 'cpu', iters: int = 2, shrink_inputs: bool = False,
                 standin_base: str = STANDIN_BASE, cfg_options: Optional[dict] = None,
                 log: Callable[[str], None] = print, train_only: bool = False, keep_checkpoints: bool = False):
        self.config = config if '::' in config else osp.abspath(config)
        self.work_dir = osp.abspath(work_dir)
        self.device = device
        self.iters = iters
        self.shrink_inputs = shrink_inputs
        self.standin_base = standin_base
        self.cfg_options = cfg_options or {}
        self.log = log
        self.train_only = train_only
        self.keep_checkpoints = keep_checkpoints
        self.report = CheckReport(config)

    # ---- preparation shared by every kind of job
    def prepare(self, path: str, sub_dir: str = '') -> Config:
        """Load ``path`` and apply data redirection, weight replacement, shrinking and the work dir."""
        cfg = Config.fromfile(path)
        if self.cfg_options:
            cfg.merge_from_dict(self.cfg_options)
        apply_config_rules(cfg)
        notes = [f'data: {", ".join(point_at_standin_data(cfg, self.standin_base)) or "none"}']
        self.report.replaced_weights += [f'{osp.basename(path)}: {line}' for line in replace_unavailable_weights(cfg)]
        if self.shrink_inputs:
            notes.append(shrink(cfg))
        quiet_loaders(cfg)
        if zero_score_thresholds(cfg.get('model')):
            notes.append('detector score_thr 0 (random weights score below it)')
        cfg.work_dir = osp.join(self.work_dir, sub_dir) if sub_dir else self.work_dir
        cfg.launcher = 'none'
        name_visualizer_uniquely(cfg)
        if self.device == 'cpu':
            cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        self.log(f'[check] prepared {_shown(path)}: '
                 + '; '.join(notes))
        return cfg

    def dump(self, cfg: Config, name: str) -> str:
        os.makedirs(cfg.work_dir, exist_ok=True)
        path = osp.join(cfg.work_dir, name)
        cfg.dump(path)
        return path

    def fresh_work_dir(self) -> None:
        """Start from an empty work dir: wipe one a previous check made (marker file), refuse any other."""
        marker = osp.join(self.work_dir, '.config_check')
        if osp.isdir(self.work_dir) and os.listdir(self.work_dir):
            if not osp.isfile(marker):
                raise FileExistsError(f'work dir {self.work_dir} is not empty and was not made by the config check; '
                                      'pass an empty or new --work-dir')
            shutil.rmtree(self.work_dir)
        os.makedirs(self.work_dir, exist_ok=True)
        open(marker, 'w').close()

    def delete_checkpoints(self) -> None:
        """Delete every checkpoint file (``*.pth``) the check wrote under its work dir, and say how much."""
        paths = checkpoint_files(self.work_dir)
        size = sum(osp.getsize(path) for path in paths)
        for path in paths:
            os.remove(path)
        if paths:
            self.log(f'[check] deleted {len(paths)} checkpoint file(s) of the check ({size / 1e9:.2f} GB); '
                     'keep_checkpoints=True (--keep-checkpoints) keeps them')

    def run(self) -> CheckReport:
        self.fresh_work_dir()
        cfg = Config.fromfile(self.config)
        kind = kind_of(cfg)
        self.log(f'[check] {_shown(self.config)}: {kind} job, device {self.device}, '
                 f'{self.iters} iterations{", shrunk" if self.shrink_inputs else ""}')
        try:
            getattr(self, f'check_{kind}')()
        finally:
            if not self.keep_checkpoints:
                self.delete_checkpoints()
        for line in self.report.replaced_weights:
            self.log(f'[check] {line}')
        self.log(f'[check] all steps passed in {self.report.seconds:.1f} s')
        return self.report

    # ---- a training config
    def check_train(self, path: Optional[str] = None, sub_dir: str = '', prepare: Optional[Callable] = None,
                    after_train: Optional[Callable] = None) -> str:
        """build -> train -> val -> checkpoint -> resume -> test; returns the checkpoint path."""
        from mmengine.runner import Runner

        path = path or self.config
        with _step(self.report, 'build', self.device, self.log) as rec:
            cfg = self.prepare(path, sub_dir)
            if prepare is not None:
                prepare(cfg)
            rec.note = limit_train_iterations(cfg, self.iters)
            cfg.train_cfg.val_interval = 10**9  # validation is its own step below
            by_epoch = 'max_epochs' in cfg.train_cfg
            end = cfg.train_cfg.max_epochs if by_epoch else cfg.train_cfg.max_iters
            cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=by_epoch, interval=end,
                                                max_keep_ckpts=2, save_best=None)
            dumped = self.dump(cfg, 'checked_config.py')
            runner = Runner.from_cfg(cfg)
        with _step(self.report, 'train', self.device, self.log) as rec:
            runner.train()
            rec.note = f'{runner.iter} iterations'
        if self.train_only:
            return ''
        with _step(self.report, 'val', self.device, self.log) as rec:
            rec.note = _metrics_note(runner.val(), runner)
        with _step(self.report, 'checkpoint', self.device, self.log) as rec:
            ckpt = _last_checkpoint(cfg.work_dir)
            rec.note = f'{osp.basename(ckpt)} {osp.getsize(ckpt) / 2**20:.1f} MB'
        trained = runner.iter
        if after_train is not None:
            after_train(cfg, ckpt)
        del runner
        with _step(self.report, 'resume', self.device, self.log) as rec:
            cfg = Config.fromfile(dumped)
            extend_schedule(cfg)
            cfg.resume, cfg.load_from = True, None  # --resume: the work dir's last checkpoint
            runner = Runner.from_cfg(cfg)
            runner.train()
            if runner.iter <= trained:
                raise RuntimeError(f'resume trained nothing: iteration {runner.iter} after {trained} before')
            rec.note = f'resumed at iteration {trained}, trained to {runner.iter}'
            del runner
        with _step(self.report, 'test', self.device, self.log) as rec:
            metrics = run_tool('tools/test.py', [dumped, ckpt, '--work-dir', osp.join(cfg.work_dir, 'test')])
            rec.note = _metrics_note(metrics)
        return ckpt

    def check_acmkd(self) -> None:
        def export(cfg: Config, ckpt: str) -> None:
            with _step(self.report, 'export', self.device, self.log) as rec:
                out = osp.join(cfg.work_dir, 'students')
                run_tool('tools/acmkd/export_students.py', [ckpt, '--out-dir', out])
                rec.note = ', '.join(sorted(os.listdir(out)))
        self.check_train(after_train=export)

    # ---- FKD: labels then training
    def check_labels(self) -> None:
        store = self.generate_labels(self.config)
        trainers = [p for p in _fkd_training_configs() if _store_of_training(p) == _store_of_labels(self.config)]
        if not trainers:
            raise ConfigCheckFailed('labels', f'no FKD training config reads the store of {self.config}')
        self.check_train(trainers[0], 'train', prepare=lambda cfg: _set_store(cfg, store))

    def check_fkd(self) -> None:
        wanted = _store_of_training(self.config)
        sources = [p for p in _label_configs() if _store_of_labels(p) == wanted]
        if not sources:
            raise ConfigCheckFailed('labels', f'no label config in configs/fkd writes the store {wanted!r}')
        store = self.generate_labels(sources[0])
        self.check_train(self.config, 'train', prepare=lambda cfg: _set_store(cfg, store))

    def generate_labels(self, path: str) -> str:
        key = (osp.abspath(path), self.shrink_inputs, self.iters, self.standin_base, self.device)
        if key in _LABEL_STORES and osp.isdir(_LABEL_STORES[key]):  # the same stand-in labels, made by an earlier check
            self.log(f'[check] labels     reused {_LABEL_STORES[key]}')
            return _LABEL_STORES[key]
        with _step(self.report, 'labels', self.device, self.log) as rec:
            cfg = self.prepare(path, 'labels')
            store = osp.join(cfg.work_dir, 'store')
            cfg.fkd_generation.store_dir = store
            trainers = [p for p in _fkd_training_configs() if _store_of_training(p) == _store_of_labels(path)]
            crops = max([_crops_in(p) for p in trainers] or [1])
            cfg.fkd_generation.num_crops = min(cfg.fkd_generation.num_crops, 2 * crops)
            cfg.label_dataset['indices'] = self.iters * 2
            dumped = self.dump(cfg, 'labels_config.py')
            report = run_tool('tools/fkd/generate_labels.py', [dumped, '--no-progress'])
            rec.note = f'{report.images} images x {cfg.fkd_generation.num_crops} crops'
        _LABEL_STORES[key] = store
        return store

    # ---- KD-Zero search
    def check_search(self) -> None:
        with _step(self.report, 'search', self.device, self.log) as rec:
            cfg = self.prepare(self.config, 'search')
            base = self.prepare(cfg.base_config, 'search_base')
            limit_train_iterations(base, self.iters)
            base.work_dir = osp.join(self.work_dir, 'search')
            cfg.base_config = self.dump(base, 'base_config.py')
            cfg.search.population_size = 2
            cfg.search.iterations = 0
            cfg.search.parents = 2
            cfg.top_k = 1
            _shorten_proxy(cfg.proxy, self.iters * 2)
            rec.note = _write_search_subsets(cfg.proxy)
            dumped = self.dump(cfg, 'search_config.py')
            out = run_tool('tools/kd_zero/search.py', [dumped, '--work-dir', cfg.work_dir])
            best = out['paths'].get('config')
            rec.note += f"best: {out['best']['genome'] if out.get('best') else None}"
        if best is None:
            raise ConfigCheckFailed('search', 'the search wrote no best_distiller_config.py')
        self.check_train(best, 'best')

    # ---- AMD pipeline
    def check_amd(self) -> None:
        with _step(self.report, 'pipeline', self.device, self.log) as rec:
            cfg = self.prepare(self.config, 'amd')
            held_out = shorten_held_out_split(cfg)
            cfg.train_dataloader.dataset = _with_indices(cfg.train_dataloader.dataset,
                                                         self.iters * 2 * (HELD_OUT_EVERY if held_out else 1))
            limit_evaluation_images(cfg)
            limit_importance_samples(cfg.amd, self.iters * 2)
            for key in ('joint_train_cfg', 'final_train_cfg'):
                if key in cfg.amd:
                    _one_short_schedule(cfg.amd[key], self.iters)
            dumped = self.dump(cfg, 'amd_config.py')
            state = run_tool('tools/amd/run.py', [dumped, '--work-dir', cfg.work_dir])
            rec.note = ', '.join(state)
        export = state.get('export', {}).get('student', {})
        with _step(self.report, 'test', self.device, self.log) as rec:
            config, ckpt = export.get('config'), export.get('checkpoint')
            if not (config and ckpt):
                raise RuntimeError(f'the AMD export names no config/checkpoint: {export}')
            metrics = run_tool('tools/test.py', [config, ckpt, '--work-dir', osp.join(cfg.work_dir, 'test')])
            rec.note = str(metrics)


# ------------------------------------------------------------------------------------------------------- helpers
def _shown(path: str) -> str:
    return osp.relpath(path, ROOT) if path.startswith(ROOT) else path


def _metrics_note(metrics: Optional[dict], runner=None) -> str:
    """The first few metrics (MMRazor's distillation val loops return None: read them from the message hub)."""
    if metrics is None and runner is not None:
        scalars = runner.message_hub.log_scalars
        metrics = {k[4:]: v.current() for k, v in scalars.items()
                   if k.startswith('val/') and k not in ('val/time', 'val/data_time')}
    if not metrics:
        raise RuntimeError('validation produced no metric')
    return ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in list(metrics.items())[:4])


def run_tool(script: str, argv: List[str]) -> Any:
    """Run ``tools/<script>``'s ``main(argv)`` in this process (what a user runs, without a new interpreter)."""
    import importlib.util
    path = osp.join(ROOT, script)
    spec = importlib.util.spec_from_file_location(f'_mmkd_tool_{osp.splitext(script)[0].replace("/", "_")}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def checkpoint_files(work_dir: str) -> List[str]:
    """Every ``*.pth`` file under ``work_dir`` (checkpoints, exported students, stored candidates)."""
    return sorted(glob.glob(osp.join(work_dir, '**', '*.pth'), recursive=True))


def _last_checkpoint(work_dir: str) -> str:
    """The checkpoint MMEngine's CheckpointHook wrote last (``<work_dir>/last_checkpoint``)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'no checkpoint was written to {work_dir} (no last_checkpoint file)')
    with open(marker) as f:
        return f.read().strip()


def _fkd_training_configs() -> List[str]:
    return sorted(p for p in glob.glob(osp.join(ROOT, 'configs', 'fkd', 'fkd*.py')))


def _label_configs() -> List[str]:
    return sorted(glob.glob(osp.join(ROOT, 'configs', 'fkd', 'labels_*.py')))


def _store_of_labels(path: str) -> str:
    return Config.fromfile(path).fkd_generation.store_dir


def _store_of_training(path: str) -> str:
    return Config.fromfile(path).train_dataloader.dataset.store_dir


def _crops_in(path: str) -> int:
    return int(Config.fromfile(path).train_dataloader.dataset.crops_per_image)


def _set_store(cfg: Config, store: str) -> None:
    cfg.train_dataloader.dataset.store_dir = store
    if 'store_dir' in cfg:
        cfg.store_dir = store


def _with_indices(dataset: dict, count: int) -> dict:
    for leaf in iter_datasets(dataset):
        leaf['indices'] = count
    return dataset


def _one_short_schedule(train_cfg: dict, iters: int) -> None:
    if 'max_iters' in train_cfg:
        train_cfg['max_iters'] = iters
        train_cfg['val_interval'] = iters
    else:
        train_cfg['max_epochs'] = 1
        train_cfg['val_interval'] = 1


def _shorten_proxy(proxy: dict, train_images: int) -> None:
    """Proxies of the (already shortened) base schedule, fitness on two images, accept every candidate.

    The stand-in training set has a handful of images: index lists of the real split (held-out fitness images,
    proxy training images) are cut to what exists, and rejection is off (a proxy on random weights and stand-in data
    says nothing about a distiller; the check is that the search runs).
    """
    proxy['fraction'] = 1.0
    proxy['fitness_samples'] = 2
    if proxy.get('held_out_every'):  # fitness on training images held out of the proxies
        proxy['held_out_every'] = HELD_OUT_EVERY
    proxy['rejection'] = None
    proxy['min_accuracy'] = 0.0
    loader = proxy.get('fitness_dataloader')
    if loader:
        loader['batch_size'] = 1
        for leaf in iter_datasets(loader['dataset']):
            leaf['indices'] = 2
    train = proxy.get('cfg_options', {}).get('train_dataloader', {})
    if isinstance(train.get('dataset'), dict) and 'indices' in train['dataset']:
        train['dataset']['indices'] = train_images
    if 'batch_size' in train:
        train['batch_size'] = min(train['batch_size'], 2)


def _write_search_subsets(proxy: dict) -> str:
    """Write the ImageNet-subset lists a search config reads (``python -m mmkd_ext.kd_zero.imagenet_subset``, the
    user's first step) into the stand-in, at its size: 2 classes x (2 proxy + 1 fitness) images."""
    from .kd_zero.imagenet_subset import FITNESS_ANN, TRAIN_ANN, write_subset
    roots = {leaf.get('data_root') for part in (proxy.get('fitness_dataloader', {}).get('dataset'), )
             if part for leaf in iter_datasets(part) if 'kd_zero_' in str(leaf.get('ann_file', ''))}
    for root in roots:
        with root_lock(root):  # checks running side by side share the stand-in
            if not (osp.isfile(osp.join(root, TRAIN_ANN)) and osp.isfile(osp.join(root, FITNESS_ANN))):
                write_subset(root, num_classes=2, per_class=2, fitness_per_class=1)
    return f'ImageNet subset lists in {sorted(roots)}; ' if roots else ''


TIMES_FILE = osp.join(ROOT, 'work_dirs', 'config_check_times.json')
# the order in which a check runs its steps (a config runs some of them)
STEP_ORDER = ('labels', 'search', 'pipeline', 'build', 'train', 'export', 'val', 'checkpoint', 'resume', 'test')


def record_times(report: CheckReport, path: str = TIMES_FILE) -> None:
    """Add ``report``'s step times to the JSON table at ``path`` (one entry per config, the latest run wins; checks
    running side by side take turns)."""
    import json
    name = osp.relpath(report.config, ROOT) if report.config.startswith(ROOT) else report.config
    with root_lock(path):
        times = {}
        if osp.isfile(path):
            with open(path) as f:
                times = json.load(f)
        times[name] = {s.name: round(s.seconds, 1) for s in report.steps}  # in the order they ran
        with open(path, 'w') as f:
            json.dump(dict(sorted(times.items())), f, indent=1)


def render_times_table(path: str = TIMES_FILE) -> str:
    """The README table "config -> checked on stand-in data (CPU), seconds" from :func:`record_times`' file."""
    import json
    with open(path) as f:
        times = json.load(f)
    lines = ['| config | steps | seconds |', '|---|---|---|']
    for name, steps in sorted(times.items()):
        ordered = sorted(steps, key=lambda step: STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER))
        lines.append(f"| `{name}` | {' > '.join(ordered)} | {sum(steps.values()):.0f} |")
    lines.append(f'| **{len(times)} configs** | | **{sum(sum(s.values()) for s in times.values()):.0f}** |')
    return '\n'.join(lines)


def check_config(config: str, work_dir: Optional[str] = None, **kwargs) -> CheckReport:
    """Run :class:`ConfigCheck` on ``config`` (``work_dir`` default: ``work_dirs/check/<config name>``)."""
    name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
    work_dir = work_dir or osp.join('work_dirs', 'check', name)
    return ConfigCheck(config, work_dir, **kwargs).run()


__all__ = ['ConfigCheck', 'ConfigCheckFailed', 'CheckReport', 'check_config', 'shrink', 'point_at_standin_data',
           'kind_of', 'record_times', 'render_times_table', 'checkpoint_files',
           'limit_importance_samples']
