"""The FKD label store: per-image crop coordinates, flip flags and compressed soft labels on disk.

On-disk format (``format_version`` 1)
-------------------------------------
::

    <store_dir>/
      manifest.json            what was generated and how (see :func:`make_manifest`); "complete": true
                               once every shard is finished, with each shard's size and sha256
      shard-00000.npy          fixed-size records, one per image of [start, stop) of the dataset
      shard-00000.done.npy     uint8 (stop - start,): 1 where the record is complete (resume bookkeeping)
      shard-00000.json         written when the shard is complete: its sha256 and size
      ...

Every ``shard-*.npy`` is an ordinary NumPy ``.npy`` file holding a 1-D array of a packed structured
dtype (little-endian, no padding), one record per image, so record ``i`` starts at byte
``header + i * record_bytes`` and ``np.load(path, mmap_mode='r')[i]`` reads it in O(1) from any
DataLoader worker. A record holds the M crops of one image:

=============  ==========  ================  ==============================================
field          dtype       shape             meaning
=============  ==========  ================  ==============================================
``coords``     f2 (or f4)  (M, 4)            top/H, left/W, height/H, width/W of the crop
``flip``       u1          (M,)              1 if the crop was flipped horizontally
``indices``    u1/u2/u4    (M, n_indices)    stored classes (absent for ``full``)
``values``     f2 (or f4)  (M, n_values)     stored probabilities (absent for ``hard``)
=============  ==========  ================  ==============================================

With C <= 256 classes and marginal smoothing K = 5 in fp16, one crop costs
8 (coords) + 1 (flip) + 5 (indices) + 10 (values) = 24 bytes; with C = 1000 (u2 indices) 29 bytes.

Writes are atomic where it matters: JSON files are written to a temporary file and renamed; shard
files are created full-size under a temporary name and renamed; a record counts only once its
``done`` flag is set, which happens after the record itself has been flushed, so a killed run never
leaves a half-written record that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .compression import LabelCodec

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
# Manifest fields that must agree between a store being resumed and the run resuming it.
GENERATION_FIELDS = ('format_version', 'teacher', 'dataset', 'num_crops', 'crop', 'strategy', 'k',
                     'num_classes', 'input_size', 'temperature', 'value_dtype', 'coord_dtype', 'seed',
                     'shard_size', 'images_per_batch', 'crops_per_forward')


class LabelStoreError(RuntimeError):
    """A label store is missing, incomplete, truncated, corrupt, or made for another teacher/dataset."""


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
def sha256_file(path: str, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def write_json_atomic(path: str, obj: dict) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file and ``os.replace`` (atomic on POSIX)."""
    tmp = f'{path}.tmp.{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str, what: str) -> dict:
    if not osp.isfile(path):
        raise LabelStoreError(f'{what} {path!r} does not exist')
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LabelStoreError(f'{what} {path!r} is not valid JSON ({err}); the store is corrupt: '
                              'regenerate it with tools/fkd/generate_labels.py') from err


def record_dtype(codec: LabelCodec, num_crops: int, coord_dtype: str = 'float16') -> np.dtype:
    """The packed per-image record of a store.

    Args:
        codec: the label codec (strategy, C, K, value dtype).
        num_crops: M, crops per image.
        coord_dtype: ``'float16'`` or ``'float32'`` for the relative coordinates.

    Returns:
        A structured dtype with fields ``coords``, ``flip`` and, when non-empty, ``indices``/``values``.
    """
    coord = np.dtype('<f2' if coord_dtype == 'float16' else '<f4')
    fields = [('coords', coord, (num_crops, 4)), ('flip', 'u1', (num_crops, ))]
    if codec.num_indices:
        fields.append(('indices', codec.index_dtype, (num_crops, codec.num_indices)))
    if codec.num_values:
        fields.append(('values', codec.numpy_value_dtype, (num_crops, codec.num_values)))
    return np.dtype(fields)


def shard_ranges(num_images: int, shard_size: int) -> List[Tuple[int, int]]:
    """``[start, stop)`` image ranges of the shards."""
    return [(s, min(s + shard_size, num_images)) for s in range(0, num_images, shard_size)]


def shard_name(index: int) -> str:
    return f'shard-{index:05d}'


def make_manifest(*, teacher: dict, dataset: dict, num_crops: int, crop: dict, codec: LabelCodec,
                  input_size: Sequence[int], temperature: float, coord_dtype: str, seed: int, shard_size: int,
                  images_per_batch: int, crops_per_forward: Optional[int] = None) -> dict:
    """The manifest of a new store (``complete`` false until every shard is done).

    Args:
        teacher: ``{'configs': [sha256 of each teacher model config], 'checkpoints': [sha256 of each
            checkpoint file], 'names': [...]}``.
        dataset: ``{'size': N, 'files_sha256': sha256 of the ordered "path<TAB>label" list}``.
        num_crops: M.
        crop: random-resized-crop parameters (``scale``, ``ratio``, ``flip_prob``, ``interpolation``).
        codec: label codec.
        input_size: (h, w) the teacher saw.
        temperature: softmax temperature of the teacher.
        coord_dtype: ``'float16'`` / ``'float32'``.
        seed: the generation seed (crop parameters of image i depend on (seed, i) only).
        shard_size: images per shard.
        images_per_batch: images per teacher batch (fixed batch boundaries make runs reproducible).
        crops_per_forward: the fixed chunking of a batch into teacher forwards (None: one forward).

    Returns:
        The manifest dict.
    """
    rec = record_dtype(codec, num_crops, coord_dtype)
    ranges = shard_ranges(dataset['size'], shard_size)
    return dict(
        format_version=FORMAT_VERSION, teacher=teacher, dataset=dataset, num_crops=num_crops, crop=crop,
        strategy=codec.strategy, k=codec.k if codec.strategy in ('marginal_smoothing', 'marginal_renorm') else None,
        num_classes=codec.num_classes, input_size=list(input_size), temperature=temperature,
        value_dtype=codec.value_dtype, coord_dtype=coord_dtype, seed=seed, shard_size=shard_size,
        images_per_batch=images_per_batch, crops_per_forward=crops_per_forward, record_bytes=rec.itemsize,
        bytes_per_crop=rec.itemsize / num_crops,
        shards=[dict(name=shard_name(i), start=s, stop=e) for i, (s, e) in enumerate(ranges)], complete=False)


def codec_of(manifest: dict) -> LabelCodec:
    return LabelCodec(manifest['strategy'], manifest['num_classes'], manifest['k'] or 5, manifest['value_dtype'])


# ----------------------------------------------------------------------------------------------
# Writing
def shard_problem(path: str, info: dict, dtype: np.dtype, checksum: bool = True) -> Optional[str]:
    """What is wrong with a finished shard file, or None when it is intact.

    Args:
        path: the ``shard-*.npy`` file.
        info: its expected ``bytes``, ``sha256``, ``start`` and ``stop`` (a manifest entry, or the shard's
            ``shard-*.json`` plus the range).
        dtype: the record dtype of the store.
        checksum: also compare the sha256 (reads the whole file).

    Returns:
        A description such as ``'is truncated or altered: 100 bytes, ...'``, or None.
    """
    if not osp.isfile(path):
        return 'is missing'
    size = osp.getsize(path)
    if size != info['bytes']:
        return f'is truncated or altered: {size} bytes, {info["bytes"]} were recorded'
    try:
        arr = np.load(path, mmap_mode='r')
    except (ValueError, OSError) as err:
        return f'is not a readable .npy file ({err})'
    expected = (info['stop'] - info['start'], )
    if arr.dtype != dtype or arr.shape != expected:
        return f'holds {arr.shape} records of {arr.dtype}, the store needs {expected} of {dtype}'
    del arr
    if checksum and sha256_file(path) != info['sha256']:
        return 'does not match its recorded sha256: the file is corrupt or was modified'
    return None


def reopen_store(store_dir: str) -> None:
    """Mark a store incomplete again (a damaged shard is being regenerated); readers then refuse it."""
    path = osp.join(store_dir, MANIFEST)
    manifest = read_json(path, 'label store manifest')
    if manifest.get('complete'):
        manifest['complete'] = False
        write_json_atomic(path, manifest)


# ----------------------------------------------------------------------------------------------
class ShardWriter:
    """Fills one shard, record by record, resumable after a kill.

    Args:
        store_dir: the store directory.
        manifest: the store's manifest.
        index: shard index into ``manifest['shards']``.
    """

    def __init__(self, store_dir: str, manifest: dict, index: int, log: Callable[[str], None] = print) -> None:
        info = manifest['shards'][index]
        self.start, self.stop = info['start'], info['stop']
        self.path = osp.join(store_dir, info['name'] + '.npy')
        self.done_path = osp.join(store_dir, info['name'] + '.done.npy')
        self.meta_path = osp.join(store_dir, info['name'] + '.json')
        self.dtype = record_dtype(codec_of(manifest), manifest['num_crops'], manifest['coord_dtype'])
        n = self.stop - self.start
        self.repaired = self._discard_if_damaged(store_dir, info, log)
        self.records = self._open(self.path, self.dtype, n)
        self.done = self._open(self.done_path, np.dtype('u1'), n)

    def _discard_if_damaged(self, store_dir: str, info: dict, log: Callable[[str], None]) -> bool:
        """Re-verify a finished shard against its ``shard-*.json``; delete it (to be regenerated) if damaged.

        Returns:
            Whether the shard was damaged and discarded.
        """
        if not osp.isfile(self.meta_path):
            return False
        try:
            meta = read_json(self.meta_path, 'label store shard record')
            problem = shard_problem(self.path, dict(meta, start=self.start, stop=self.stop), self.dtype)
        except LabelStoreError as err:
            problem = str(err)
        if problem is None:
            return False
        log(f'[fkd] shard {self.path} {problem}: regenerating this shard')
        os.remove(self.meta_path)  # first: the store can no longer be finalised with the damaged shard
        reopen_store(store_dir)
        for path in (self.path, self.done_path):
            if osp.exists(path):
                os.remove(path)
        return True

    @staticmethod
    def _open(path: str, dtype: np.dtype, n: int) -> np.memmap:
        """Open ``path`` for update, creating it full-size (zeros) atomically if absent."""
        if osp.exists(path):
            arr = np.lib.format.open_memmap(path, mode='r+')
            if arr.dtype != dtype or arr.shape != (n, ):
                raise LabelStoreError(f'{path!r} holds {arr.shape} {arr.dtype}, expected ({n},) {dtype}; it belongs '
                                      'to another generation run: delete the store directory or choose another')
            return arr
        tmp = f'{path}.tmp.{os.getpid()}.npy'
        arr = np.lib.format.open_memmap(tmp, mode='w+', dtype=dtype, shape=(n, ))
        arr.flush()
        del arr
        os.replace(tmp, path)
        return np.lib.format.open_memmap(path, mode='r+')

    @property
    def is_complete(self) -> bool:
        return osp.isfile(self.meta_path)

    def pending(self, images_per_batch: int) -> Iterator[Tuple[int, int]]:
        """Global ``[start, stop)`` image ranges of the teacher batches that are not complete yet.

        Batch boundaries are fixed (multiples of ``images_per_batch`` from the shard start), so a
        resumed run forwards exactly the batches an uninterrupted run would.
        """
        for s in range(self.start, self.stop, images_per_batch):
            e = min(s + images_per_batch, self.stop)
            if not self.done[s - self.start:e - self.start].all():
                yield s, e

    def write(self, start: int, records: np.ndarray) -> None:
        """Store the records of images ``start .. start + len(records)``, then mark them done."""
        lo = start - self.start
        self.records[lo:lo + len(records)] = records
        self.records.flush()
        self.done[lo:lo + len(records)] = 1
        self.done.flush()

    def finish(self) -> dict:
        """Check every record is done and write ``shard-*.json`` (size + sha256). Returns that dict."""
        if not self.done.all():
            missing = int((self.done == 0).sum())
            raise LabelStoreError(f'{self.path!r}: {missing} records are not written yet; cannot finish the shard')
        self.records.flush()
        meta = dict(file=osp.basename(self.path), bytes=osp.getsize(self.path), sha256=sha256_file(self.path),
                    images=self.stop - self.start)
        write_json_atomic(self.meta_path, meta)
        return meta


def start_store(store_dir: str, manifest: dict) -> dict:
    """Create ``store_dir`` with ``manifest`` or, if it exists, check it is the same generation run.

    Returns:
        The manifest on disk (for a complete store, with checksums).

    Raises:
        LabelStoreError: the existing store was generated with different settings (names the fields).
    """
    os.makedirs(store_dir, exist_ok=True)
    path = osp.join(store_dir, MANIFEST)
    if not osp.exists(path):
        write_json_atomic(path, manifest)
        return manifest
    existing = read_json(path, 'label store manifest')
    diffs = [f for f in GENERATION_FIELDS if _jsonable(existing.get(f)) != _jsonable(manifest.get(f))]
    if diffs:
        detail = '; '.join(f'{f}: on disk {existing.get(f)!r}, now {manifest.get(f)!r}' for f in diffs)
        raise LabelStoreError(f'cannot resume the label store {store_dir!r}: its manifest {path!r} was made with '
                              f'different settings ({detail}). Use another store_dir or delete this one.')
    return existing


def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True))


def finalize_store(store_dir: str) -> Optional[dict]:
    """Mark the store complete once every shard has its ``shard-*.json``; returns the manifest, or None.

    Safe to call from several processes: each writes the same content atomically.
    """
    path = osp.join(store_dir, MANIFEST)
    manifest = read_json(path, 'label store manifest')
    metas = []
    for info in manifest['shards']:
        meta_path = osp.join(store_dir, info['name'] + '.json')
        if not osp.isfile(meta_path):
            return None
        metas.append(read_json(meta_path, 'label store shard record'))
    for info, meta in zip(manifest['shards'], metas):
        info.update(bytes=meta['bytes'], sha256=meta['sha256'])
    manifest['complete'] = True
    write_json_atomic(path, manifest)
    return manifest


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
@dataclass
class CropLabels:
    """The stored crops of one image.

    Attributes:
        coords: (M, 4) float32 relative (top, left, height, width).
        flips: (M,) bool.
        indices: (M, n_indices) int64.
        values: (M, n_values) float32.
    """
    coords: np.ndarray
    flips: np.ndarray
    indices: np.ndarray
    values: np.ndarray


class LabelStore:
    """Read-only view of a complete label store, safe to use from many DataLoader workers.

    Opening verifies the manifest and every shard (size, ``.npy`` header and, with ``verify='full'``,
    the sha256). The memory maps are opened lazily in each process and not pickled.

    Args:
        store_dir: the store directory.
        verify: ``'full'`` (sizes, headers and checksums; default) or ``'quick'`` (sizes and headers).
    """

    def __init__(self, store_dir: str, verify: str = 'full') -> None:
        if verify not in ('full', 'quick'):
            raise ValueError(f"verify must be 'full' or 'quick', got {verify!r}")
        self.store_dir = store_dir
        self.manifest_path = osp.join(store_dir, MANIFEST)
        if not osp.isdir(store_dir):
            raise LabelStoreError(f'FKD label store {store_dir!r} does not exist; generate it with '
                                  'tools/fkd/generate_labels.py LABEL_CONFIG')
        self.manifest = read_json(self.manifest_path, 'label store manifest')
        if self.manifest.get('format_version') != FORMAT_VERSION:
            raise LabelStoreError(f'{self.manifest_path!r} has format_version {self.manifest.get("format_version")!r}; '
                                  f'this mmkd_ext reads version {FORMAT_VERSION}: regenerate the store')
        if not self.manifest.get('complete'):
            done = sum(osp.isfile(osp.join(store_dir, s['name'] + '.json')) for s in self.manifest['shards'])
            raise LabelStoreError(f'FKD label store {store_dir!r} is incomplete ({done} of '
                                  f'{len(self.manifest["shards"])} shards finished); resume the generation with '
                                  'tools/fkd/generate_labels.py (it continues where it stopped)')
        self.codec = codec_of(self.manifest)
        self.num_crops = self.manifest['num_crops']
        self.dtype = record_dtype(self.codec, self.num_crops, self.manifest['coord_dtype'])
        self._starts = np.array([s['start'] for s in self.manifest['shards']], dtype=np.int64)
        for info in self.manifest['shards']:
            self._verify_shard(info, verify)
        self._maps: Dict[int, np.ndarray] = {}

    # -- verification ---------------------------------------------------------------------------
    def _verify_shard(self, info: dict, verify: str) -> None:
        path = osp.join(self.store_dir, info['name'] + '.npy')
        problem = shard_problem(path, info, self.dtype, verify == 'full')
        if problem:
            raise LabelStoreError(f'label store shard {path!r} {problem} (manifest {self.manifest_path!r}). Run '
                                  'tools/fkd/generate_labels.py with the same label config again: it regenerates '
                                  'just the damaged shards')

    def check_dataset(self, fingerprint: dict) -> None:
        """Raise unless the store was generated for the dataset with ``fingerprint`` (see generation)."""
        stored = self.manifest['dataset']
        for key in ('size', 'files_sha256'):
            if stored.get(key) != fingerprint.get(key):
                what = ('number of images' if key == 'size' else 'ordered list of image files and labels')
                raise LabelStoreError(
                    f'FKD label store {self.store_dir!r} was generated for another dataset: the {what} differs '
                    f'({key}: manifest {stored.get(key)!r}, training dataset {fingerprint.get(key)!r}). '
                    'Generate labels for this dataset, or point store_dir at the right store.')

    def check_teacher(self, expected: dict) -> None:
        """Raise unless the store's teacher matches ``expected`` (``checkpoints``/``configs`` sha256 lists)."""
        stored = self.manifest['teacher']
        for key in ('checkpoints', 'configs'):
            if key in expected and list(expected[key]) != list(stored.get(key, [])):
                raise LabelStoreError(
                    f'FKD label store {self.store_dir!r} was generated by another teacher: {key} sha256 differ '
                    f'(manifest {stored.get(key)}, expected {list(expected[key])}); see {self.manifest_path!r}')

    def check_num_classes(self, num_classes: int) -> None:
        if num_classes != self.codec.num_classes:
            raise LabelStoreError(f'FKD label store {self.store_dir!r} holds {self.codec.num_classes}-class labels but '
                                  f'the model has {num_classes} classes ({self.manifest_path!r})')

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.manifest['dataset']['size']

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_maps'] = {}  # never pickle memory maps into DataLoader workers
        return state

    def _shard_of(self, index: int) -> Tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f'image index {index} out of range for a label store of {len(self)} images')
        shard = int(np.searchsorted(self._starts, index, side='right') - 1)
        return shard, index - int(self._starts[shard])

    def record(self, index: int) -> np.void:
        """The raw record of image ``index`` (O(1): one memory-mapped read)."""
        shard, offset = self._shard_of(index)
        if shard not in self._maps:
            path = osp.join(self.store_dir, self.manifest['shards'][shard]['name'] + '.npy')
            self._maps[shard] = np.load(path, mmap_mode='r')
        return self._maps[shard][offset]

    def crops(self, index: int) -> CropLabels:
        """The M stored crops of image ``index``, sanity-checked (finite, in range)."""
        rec = self.record(index)
        m = self.num_crops
        names = rec.dtype.names
        indices = rec['indices'].astype(np.int64) if 'indices' in names else np.zeros((m, 0), np.int64)
        values = rec['values'].astype(np.float32) if 'values' in names else np.zeros((m, 0), np.float32)
        coords = rec['coords'].astype(np.float32)
        bad = (not np.isfinite(coords).all() or (coords < 0).any() or (coords > 1.0 + 1e-3).any()
               or (indices >= self.codec.num_classes).any() or not np.isfinite(values).all()
               or (values < 0).any() or (values > 1.0 + 1e-2).any())
        if bad:
            shard, offset = self._shard_of(index)
            raise LabelStoreError(f'record {offset} (image {index}) of label store shard '
                                  f'{self.manifest["shards"][shard]["name"]}.npy in {self.store_dir!r} holds invalid '
                                  'values (coordinates outside [0, 1], class index >= C or probabilities outside '
                                  '[0, 1]); the store is corrupt: regenerate it')
        return CropLabels(coords, rec['flip'].astype(bool), indices, values)

    def soft_labels(self, index: int, crop_ids: Sequence[int]) -> torch.Tensor:
        """Recovered (len(crop_ids), C) distributions of the chosen crops of image ``index``."""
        c = self.crops(index)
        ids = np.asarray(crop_ids)
        return self.codec.decode(c.indices[ids], c.values[ids])

    def bytes_per_crop(self) -> float:
        return self.dtype.itemsize / self.num_crops
