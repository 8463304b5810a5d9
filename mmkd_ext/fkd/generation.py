"""FKD label generation (paper Sec. 3.2, "label generation phase"): teacher soft labels of M random crops.

For every training image: M random-resized crops with a flip flag (a pure function of the seed and
the image index, :func:`mmkd_ext.fkd.crops.sample_image_crops`), the teacher (or the mean of several
teachers' probabilities) on every crop in batches, ``softmax(z / temperature)``, compression
(:class:`LabelCodec`) and one fixed-size record per image in the label store (:mod:`.store`).

Reproducibility and resume: teacher batches are fixed groups of ``images_per_batch`` consecutive
images inside a shard; a record counts once its ``done`` flag is set. A killed run restarted with the
same config regenerates only the unfinished batches, with the same crops and the same batch
composition, so the store is identical to an uninterrupted one. With ``world_size`` processes, rank
``r`` fills the shards ``r, r + world_size, ...``: the same shards and batches as one process.

The generation config (see ``configs/fkd/*_labels_*.py``)::

    teachers = [dict(model=<mmpretrain classifier>, checkpoint='...pth'), ...]   # probabilities averaged
    label_dataset = <dataset config whose pipeline yields the uncropped image, e.g. LoadImageFromFile>
    fkd_generation = dict(store_dir=..., num_crops=M, scale=(0.08, 0.936), ratio=(3/4, 4/3), flip_prob=0.5,
                          input_size=(h, w), interpolation='bicubic', temperature=1.0,
                          strategy='marginal_smoothing', k=5, value_dtype='float16', coord_dtype='float16',
                          images_per_batch=16, crops_per_forward=None, shard_size=10000, seed=0, num_workers=0,
                          device='auto', amp='none', channels_last=False)

``images_per_batch * num_crops`` crops form one batch; ``crops_per_forward`` splits it into fixed
chunks for big teachers (the chunks are the same in every run, so results stay reproducible).

Teacher precision ([R] ours, not in the paper): ``amp='bf16'`` / ``'fp16'`` runs the teacher forward
under ``torch.autocast`` (fp16 on CUDA only), ``channels_last=True`` runs it in NHWC memory format.
The soft-label math after the teacher (softmax, top-k, compression) stays fp32. Both settings are
recorded in the manifest (``teacher.precision``), so a store is never resumed in another precision;
:func:`compare_with_fp32` (``tools/fkd/generate_labels.py --compare-fp32 N``) measures how far the
stored labels are from an fp32 teacher.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.utils import ProgressBar
from torch import nn

from ..weights import load_weights
from .compression import LabelCodec
from .crops import coords_to_box, crop_resize, sample_image_crops
from .store import (
    LabelStore,
    ShardWriter,
    finalize_store,
    make_manifest,
    record_dtype,
    sha256_file,
    sha256_text,
    start_store,
)

DEFAULTS = dict(num_crops=200, scale=(0.08, 0.936), ratio=(3. / 4., 4. / 3.), flip_prob=0.5, input_size=(224, 224),
                interpolation='bicubic', temperature=1.0, strategy='marginal_smoothing', k=5,
                value_dtype='float16', coord_dtype='float16', images_per_batch=16, crops_per_forward=None,
                shard_size=10000, seed=0, num_workers=0, device='auto', amp='none', channels_last=False)
AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass
class GenerationSettings:
    """``fkd_generation`` of a config with the defaults filled in (see the module docstring).

    Defaults: M = 200 (the paper's Table 2 example; [X] official 500), crop scale (0.08, 0.936) ([X]
    official; [R] (0.08, 1.0) for torchvision parity), bicubic teacher crops and temperature 1 ([X]),
    marginal smoothing K = 5 in fp16 ([X] official default), fp32 teacher in NCHW (``amp='none'``,
    ``channels_last=False``; [R] ``'bf16'``/``'fp16'`` autocast and NHWC are options).
    """
    store_dir: str
    num_crops: int = DEFAULTS['num_crops']
    scale: Tuple[float, float] = DEFAULTS['scale']
    ratio: Tuple[float, float] = DEFAULTS['ratio']
    flip_prob: float = DEFAULTS['flip_prob']
    input_size: Tuple[int, int] = DEFAULTS['input_size']
    interpolation: str = DEFAULTS['interpolation']
    temperature: float = DEFAULTS['temperature']
    strategy: str = DEFAULTS['strategy']
    k: int = DEFAULTS['k']
    value_dtype: str = DEFAULTS['value_dtype']
    coord_dtype: str = DEFAULTS['coord_dtype']
    images_per_batch: int = DEFAULTS['images_per_batch']
    crops_per_forward: Optional[int] = DEFAULTS['crops_per_forward']
    shard_size: int = DEFAULTS['shard_size']
    seed: int = DEFAULTS['seed']
    num_workers: int = DEFAULTS['num_workers']
    device: str = DEFAULTS['device']
    amp: str = DEFAULTS['amp']
    channels_last: bool = DEFAULTS['channels_last']
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_cfg(cls, cfg: dict) -> 'GenerationSettings':
        cfg = dict(cfg)
        known = set(cls.__dataclass_fields__) - {'extra'}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise KeyError(f'unknown fkd_generation keys {unknown}; known keys: {sorted(known)}')
        if 'store_dir' not in cfg:
            raise KeyError('fkd_generation.store_dir is required: where the label store is written')
        size = cfg.get('input_size', DEFAULTS['input_size'])
        cfg['input_size'] = (size, size) if isinstance(size, int) else tuple(size)
        cfg['scale'] = tuple(cfg.get('scale', DEFAULTS['scale']))
        cfg['ratio'] = tuple(cfg.get('ratio', DEFAULTS['ratio']))
        settings = cls(**cfg)
        if settings.amp not in AMP_DTYPES:
            raise ValueError(f'fkd_generation.amp must be one of {tuple(AMP_DTYPES)} (autocast dtype of the teacher '
                             f'forward), got {settings.amp!r}')
        if settings.shard_size % settings.images_per_batch:
            raise ValueError(f'fkd_generation.shard_size ({settings.shard_size}) must be a multiple of '
                             f'images_per_batch ({settings.images_per_batch}) so batches never straddle shards')
        return settings

    def crop_params(self) -> dict:
        return dict(scale=list(self.scale), ratio=list(self.ratio), flip_prob=self.flip_prob,
                    interpolation=self.interpolation)

    def precision(self) -> dict:
        """How the teacher runs (recorded in the manifest under ``teacher.precision``)."""
        return dict(amp=self.amp, channels_last=bool(self.channels_last))


# ----------------------------------------------------------------------------------------------
# Teachers and data
# ----------------------------------------------------------------------------------------------
def _plain(cfg) -> dict:
    return cfg.to_dict() if isinstance(cfg, ConfigDict) else dict(cfg)


def build_teachers(teachers: Sequence[dict], device: torch.device, channels_last: bool = False) -> List[nn.Module]:
    """Build each ``dict(model=..., checkpoint=..., strict=True)`` (any mmpretrain classifier) in eval mode.

    The checkpoint must match the model exactly unless the entry sets ``strict=False`` (:mod:`mmkd_ext.weights`).

    Args:
        teachers: the teacher specs of the config.
        device: where the teachers run.
        channels_last: convert the weights to NHWC (``torch.channels_last``) memory format.

    Returns:
        The teachers, in eval mode on ``device``.
    """
    from ..registry import MODELS
    models = []
    for i, spec in enumerate(teachers):
        if 'model' not in spec:
            raise KeyError(f'teachers[{i}] needs a "model" config (and usually a "checkpoint")')
        model = MODELS.build(_plain(spec['model']))
        if spec.get('checkpoint'):
            if not osp.isfile(spec['checkpoint']):
                raise FileNotFoundError(f'teachers[{i}].checkpoint {spec["checkpoint"]!r} does not exist; train the '
                                        'teacher first or fix the path')
            load_weights(model, spec['checkpoint'], spec.get('strict', True), f'teachers[{i}].checkpoint',
                         f'strict=False in teachers[{i}]')
        model = model.to(device).eval()
        models.append(model.to(memory_format=torch.channels_last) if channels_last else model)
    return models


def teacher_fingerprint(teachers: Sequence[dict]) -> dict:
    """sha256 of every teacher's model config and checkpoint file (recorded in the manifest)."""
    configs = [sha256_text(json.dumps(_plain(t['model']), sort_keys=True, default=str)) for t in teachers]
    ckpts = [sha256_file(t['checkpoint']) if t.get('checkpoint') else 'none' for t in teachers]
    names = [str(_plain(t['model']).get('type')) for t in teachers]
    return dict(configs=configs, checkpoints=ckpts, names=names)


def dataset_fingerprint(dataset) -> dict:
    """Size and sha256 of the ordered ``relative path<TAB>label`` list of an mmengine dataset.

    Datasets held in memory (CIFAR) contribute the sha256 of each image instead of a path.
    """
    root = getattr(dataset, 'data_root', '') or ''
    lines = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        path = info.get('img_path', '')
        rel = osp.relpath(path, root) if root and path else path
        if not path and isinstance(info.get('img'), np.ndarray):  # in-memory datasets (CIFAR): hash the pixels
            rel = hashlib.sha256(np.ascontiguousarray(info['img']).tobytes()).hexdigest()
        lines.append(f'{rel}\t{int(np.asarray(info.get("gt_label", -1)).reshape(-1)[0])}')
    return dict(size=len(dataset), files_sha256=sha256_text('\n'.join(lines)))


def check_amp(amp: str, device: torch.device) -> None:
    """Refuse an autocast dtype the device cannot run.

    Raises:
        ValueError: unknown ``amp``, or ``'fp16'`` on a device other than CUDA.
    """
    if amp not in AMP_DTYPES:
        raise ValueError(f'fkd_generation.amp must be one of {tuple(AMP_DTYPES)}, got {amp!r}')
    if amp == 'fp16' and device.type != 'cuda':
        raise ValueError(f"fkd_generation.amp='fp16' needs a CUDA device, but the teacher runs on {device.type!r}: "
                         "use amp='bf16' (CPU autocast) or amp='none' (fp32), or run on a GPU (device='cuda')")


def teacher_autocast(amp: str, device: torch.device):
    """The autocast context of the teacher forward: ``torch.autocast`` in ``amp``'s dtype, or a no-op.

    Args:
        amp: ``'none'``, ``'bf16'`` or ``'fp16'`` (CUDA only).
        device: the device the teacher runs on.

    Returns:
        A context manager.
    """
    check_amp(amp, device)
    if AMP_DTYPES[amp] is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


@torch.no_grad()
def teacher_probs(teachers: Sequence[nn.Module], crops: np.ndarray, temperature: float,
                  crops_per_forward: Optional[int] = None, amp: str = 'none',
                  channels_last: bool = False) -> torch.Tensor:
    """Mean over teachers of ``softmax(teacher(crops) / temperature)``.

    Only the teacher forward runs under autocast; the logits are cast to fp32 before the softmax.

    Args:
        teachers: classifiers with a ``data_preprocessor`` whose ``mode='tensor'`` output is the logits.
        crops: (N, h, w, 3) uint8 crops in the channel order of the dataset pipeline.
        temperature: softmax temperature ([X] 1 for supervised teachers).
        crops_per_forward: forward at most this many crops at a time (None: all at once).
        amp: autocast dtype of the teacher forward (``'none'``, ``'bf16'``, ``'fp16'``; see :func:`check_amp`).
        channels_last: feed the teacher NHWC (``torch.channels_last``) inputs.

    Returns:
        (N, C) float32 probabilities on the CPU.
    """
    if crops_per_forward and len(crops) > crops_per_forward:
        return torch.cat([teacher_probs(teachers, crops[i:i + crops_per_forward], temperature, amp=amp,
                                        channels_last=channels_last)
                          for i in range(0, len(crops), crops_per_forward)])
    inputs = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    total = None
    for teacher in teachers:
        data = teacher.data_preprocessor(dict(inputs=inputs, data_samples=None), False)
        x = data['inputs']
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with teacher_autocast(amp, x.device):
            logits = teacher(x, mode='tensor')
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        probs = torch.softmax(logits.float() / temperature, dim=1).cpu()
        total = probs if total is None else total + probs
    return total / len(teachers)


class CropSource(torch.utils.data.Dataset):
    """Image ``i`` -> its M teacher crops, coordinates and flips (runs in DataLoader workers).

    Args:
        dataset: mmengine dataset whose items hold the uncropped image under ``'img'`` (H, W, 3).
        settings: generation settings.
    """

    def __init__(self, dataset, settings: GenerationSettings) -> None:
        self.dataset = dataset
        self.s = settings

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        img = self.dataset[index]['img']
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        height, width = img.shape[:2]
        s = self.s
        coords, flips = sample_image_crops(s.seed, index, height, width, s.num_crops, s.scale, s.ratio,
                                           s.flip_prob, s.coord_dtype)
        crops = np.stack([crop_resize(img, coords_to_box(c, height, width), s.input_size, bool(f), s.interpolation)
                          for c, f in zip(coords, flips)])
        return index, crops, coords, flips


def _collate(items):
    return items


# ----------------------------------------------------------------------------------------------
# The generation run
# ----------------------------------------------------------------------------------------------
def _device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def _records(items, probs: torch.Tensor, codec: LabelCodec, dtype: np.dtype, num_crops: int) -> np.ndarray:
    """Pack the crops of a batch of images and their probabilities into store records."""
    indices, values = codec.encode(probs)
    recs = np.zeros(len(items), dtype=dtype)
    for j, (_, _, coords, flips) in enumerate(items):
        sl = slice(j * num_crops, (j + 1) * num_crops)
        recs[j]['coords'] = coords
        recs[j]['flip'] = flips
        if codec.num_indices:
            recs[j]['indices'] = indices[sl]
        if codec.num_values:
            recs[j]['values'] = values[sl]
    return recs


@dataclass
class GenerationReport:
    """What one process did."""
    images: int
    crops: int
    seconds: float
    manifest: Optional[dict]  # the final manifest when the store is complete, else None

    @property
    def crops_per_s(self) -> float:
        return self.crops / self.seconds if self.seconds > 0 else float('nan')


def _generation_inputs(cfg: Config) -> Tuple[GenerationSettings, list, object, torch.device]:
    """Settings, teacher specs, label dataset and teacher device of a label-generation config."""
    from mmengine.registry import init_default_scope

    from ..registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmrazor'))
    s = GenerationSettings.from_cfg(cfg.fkd_generation)
    teacher_cfgs = cfg.get('teachers') or ([cfg.teacher] if cfg.get('teacher') else None)
    if not teacher_cfgs:
        raise KeyError('the label-generation config needs `teachers = [dict(model=..., checkpoint=...)]`')
    dataset = DATASETS.build(_plain(cfg.label_dataset))
    device = _device(s.device)
    check_amp(s.amp, device)
    return s, teacher_cfgs, dataset, device


def generate_labels(cfg: Config, rank: int = 0, world_size: int = 1, stop_after: Optional[int] = None,
                    progress: bool = True, log: Callable[[str], None] = print) -> GenerationReport:
    """Generate (or resume) the label store described by ``cfg``.

    Args:
        cfg: config with ``teachers`` (or ``teacher``), ``label_dataset`` and ``fkd_generation``.
        rank: this process's rank; it fills shards ``rank, rank + world_size, ...``.
        world_size: number of processes.
        stop_after: stop (as if killed) once at least this many images were written (tests, dry runs).
        progress: show a progress bar with ETA (rank 0 only).
        log: where status lines go.

    Returns:
        A :class:`GenerationReport`; ``manifest`` is set when the store is complete after this call.
    """
    s, teacher_cfgs, dataset, device = _generation_inputs(cfg)
    teachers = build_teachers(teacher_cfgs, device, s.channels_last)
    num_classes = int(teacher_probs(teachers[:1], _probe_crop(s), s.temperature).shape[1])
    codec = LabelCodec(s.strategy, num_classes, k=s.k, value_dtype=s.value_dtype)
    teacher = dict(teacher_fingerprint(teacher_cfgs), precision=s.precision())
    manifest = start_store(s.store_dir, make_manifest(
        teacher=teacher, dataset=dataset_fingerprint(dataset), num_crops=s.num_crops,
        crop=s.crop_params(), codec=codec, input_size=s.input_size, temperature=s.temperature,
        coord_dtype=s.coord_dtype, seed=s.seed, shard_size=s.shard_size, images_per_batch=s.images_per_batch,
        crops_per_forward=s.crops_per_forward))
    dtype = record_dtype(codec, s.num_crops, s.coord_dtype)
    writers = [ShardWriter(s.store_dir, manifest, i, log) for i in range(rank, len(manifest['shards']), world_size)]
    writers = [w for w in writers if not w.is_complete]
    batches = [(w, b) for w in writers for b in w.pending(s.images_per_batch)]
    for w in writers:  # killed after its last record but before its checksum
        if w.done.all():
            w.finish()
    todo = sum(e - st for _, (st, e) in batches)
    log(f'[fkd] rank {rank}/{world_size}: {todo} images to label in {len(writers)} shard(s) of {s.store_dir} '
        f'({s.num_crops} crops each, {dtype.itemsize / s.num_crops:.1f} bytes per crop; teacher on {device}, '
        f'amp={s.amp}, channels_last={s.channels_last})')
    loader = torch.utils.data.DataLoader(
        CropSource(dataset, s), batch_sampler=[list(range(st, e)) for _, (st, e) in batches],
        num_workers=s.num_workers, collate_fn=_collate)
    bar = ProgressBar(todo) if progress and rank == 0 and todo else None
    done, start = 0, time.perf_counter()
    for (writer, (st, _)), items in zip(batches, loader):
        probs = teacher_probs(teachers, np.concatenate([it[1] for it in items]), s.temperature, s.crops_per_forward,
                              s.amp, s.channels_last)
        writer.write(st, _records(items, probs, codec, dtype, s.num_crops))
        done += len(items)
        if bar is not None:
            bar.update(len(items))
        if writer.done.all():
            writer.finish()
        if stop_after is not None and done >= stop_after:
            return GenerationReport(done, done * s.num_crops, time.perf_counter() - start, None)
    seconds = time.perf_counter() - start
    if bar is not None:
        print()
    final = finalize_store(s.store_dir)
    if final is not None:
        log(f'[fkd] label store complete: {s.store_dir}')
    return GenerationReport(done, done * s.num_crops, seconds, final)


def _probe_crop(s: GenerationSettings) -> np.ndarray:
    """One grey crop to learn the teacher's number of classes."""
    return np.full((1, s.input_size[0], s.input_size[1], 3), 128, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Precision check: stored labels against an fp32 teacher
# ----------------------------------------------------------------------------------------------
@dataclass
class LabelDifference:
    """Stored labels against the labels an fp32 NCHW teacher gives the same crops (same compression).

    Attributes:
        images: images compared (the first ones of the store).
        crops: crops compared.
        max_abs: max over crops and classes of |stored - fp32| of the recovered C-way distributions.
        mean_max_abs: mean over crops of the per-crop max |stored - fp32|.
        top1_agreement: fraction of crops whose recovered top-1 class is the same.
        precision: the store's ``teacher.precision`` (``amp``, ``channels_last``).
    """
    images: int
    crops: int
    max_abs: float
    mean_max_abs: float
    top1_agreement: float
    precision: dict

    def __str__(self) -> str:
        return (f'stored labels (amp={self.precision.get("amp")}, channels_last={self.precision.get("channels_last")}) '
                f'vs fp32 teacher on {self.crops} crops of {self.images} images: max |difference| {self.max_abs:.2e}, '
                f'mean per-crop max {self.mean_max_abs:.2e}, top-1 agreement {100 * self.top1_agreement:.2f}%')


def compare_with_fp32(cfg: Config, num_images: int) -> LabelDifference:
    """Recompute the labels of the first ``num_images`` images with the teacher in fp32 and compare.

    The same crops (a pure function of seed and image index) go through the teacher without autocast
    and in NCHW, then through the store's compression; both label sets are decoded to C-way
    distributions. For a store generated in fp32 the difference is 0 up to batch-composition noise.

    Args:
        cfg: the label-generation config the store was made with.
        num_images: how many images, from the first.

    Returns:
        A :class:`LabelDifference`.

    Raises:
        LabelStoreError: the store is missing or incomplete.
        ValueError: the store's crops are not those of ``cfg`` (another seed or crop setting).
    """
    s, teacher_cfgs, dataset, device = _generation_inputs(cfg)
    store = LabelStore(s.store_dir, verify='quick')
    teachers = build_teachers(teacher_cfgs, device)
    source = CropSource(dataset, s)
    n = min(int(num_images), len(store))
    if n < 1:
        raise ValueError(f'compare_with_fp32 needs num_images >= 1, got {num_images}')
    worst, top1 = [], []
    for index in range(n):
        _, crops, coords, _ = source[index]
        if not np.array_equal(store.crops(index).coords, coords.astype(np.float32)):
            raise ValueError(f'the label store {s.store_dir!r} holds other crops for image {index} than this config '
                             'samples (another seed, crop scale or dataset order): compare with the config that '
                             'generated it')
        fp32 = teacher_probs(teachers, crops, s.temperature, s.crops_per_forward)
        fp32 = store.codec.decode(*store.codec.encode(fp32))
        stored = store.soft_labels(index, np.arange(s.num_crops))
        worst.append((stored - fp32).abs().amax(dim=1))
        top1.append(stored.argmax(dim=1) == fp32.argmax(dim=1))
    worst, top1 = torch.cat(worst), torch.cat(top1)
    return LabelDifference(images=n, crops=len(worst), max_abs=float(worst.max()), mean_max_abs=float(worst.mean()),
                           top1_agreement=float(top1.float().mean()),
                           precision=dict(store.manifest['teacher'].get('precision', {})))
