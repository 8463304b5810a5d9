"""FKD on ImageNet-sized JPEGs (paper Sec. 3.3: a batch of n crops decodes only n/m images), side by side.

    python benchmarks/fkd_jpeg.py                      # 2-core CPU default, a few minutes
    python benchmarks/fkd_jpeg.py --images 20000 --size 224 --workers 8 --iters 30 --rounds 5 \
        --gen-images 256 --device cuda                 # a real machine (not run here: no GPU)

Data: an ImageNet-layout stand-in (``data/bench/fkd_jpeg``: ``train/<wnid>/*.JPEG`` + ``meta/train.txt``,
read by mmpretrain's ``ImageNet`` dataset) of 500x375 JPEGs at quality 90, ~100 KB each (ImageNet's train
JPEGs average ~110 KB), generated once, deterministic, the same files for every run and mode.

1. Training throughput, same student (mmpretrain ResNet-18, 1000 classes, ``--size`` px crops), same data,
   same ``--crops`` crops per step, DataLoader workers, median of alternating rounds:
   plain (mmpretrain's ImageNet pipeline: LoadImageFromFile, RandomResizedCrop, RandomFlip, PackInputs),
   online KD (MMRazor SingleTeacherDistill, ResNet-34 teacher, KL on the logits) and FKD (our ImageNet FKD
   config's FKDDataset + FKDReplayCrop + fkd_collate over a label store, ``crops/m`` images of m crops).
   Prints crops/s, images/s, the ratios FKD/plain and FKD/KD, and the CPU seconds per crop of all
   processes (main + workers, from /proc): on a shared machine the figure that other jobs do not move.
2. The breakdown per crop, each part timed alone in the main process (CPU time on a CPU, medians):
   decode (LoadImageFromFile), crop/resize/flip/pack (+ label record read and decode for FKD),
   forward/backward (train_step); their sum next to the CPU per crop measured in training, and the
   FKD / plain ratio the sums predict.
3. Label generation (generate_labels of tools/fkd/generate_labels.py) with the teacher in fp32, bf16
   autocast and channels_last: crops/s and crops per CPU-second against fp32, and the stored labels'
   max |difference| to the fp32 store (teacher calibrated to peaked labels, see generation_precision).
Weights are random (fixed seeds): speed does not depend on them.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import tempfile
import time
from typing import Callable, Optional

import cv2
import mmpretrain
import numpy as np
import torch
from fkd_common import ROOT, Trainer, calibrated_checkpoint, compare
from mmengine.config import Config

os.chdir(ROOT)

from mmkd_ext.fkd.generation import generate_labels  # noqa: E402
from mmkd_ext.fkd.store import LabelStore  # noqa: E402
from mmkd_ext.registry import PRETRAIN_DATASETS  # noqa: E402

FKD_CONFIG = 'configs/fkd/fkd_efficientnet-l2_resnet50_8xb128-300e_in1k.py'
LABEL_CONFIG = 'configs/fkd/labels_efficientnet-l2-475_m200-ms5_in1k.py'
KD_CONFIG = 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'
DATA_ROOT = 'data/bench/fkd_jpeg'
IMAGE_SIZE = (375, 500)  # (h, w), ImageNet's most common size
JPEG_QUALITY = 90
NUM_CROPS = 8  # M stored per image (>= the largest m)
# mmpretrain's ImageNet data config (pipeline, data preprocessor): mmpretrain::_base_/datasets/imagenet_bs32.py
PLAIN_BASE = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', '_base_', 'datasets', 'imagenet_bs32.py')


# ----------------------------------------------------------------------------------------------
# The ImageNet-layout stand-in
# ----------------------------------------------------------------------------------------------
def synthetic_photo(seed: int) -> np.ndarray:
    """A deterministic 500x375 BGR image whose JPEG size and decode time are ImageNet-like.

    Smooth colour fields at two scales plus luminance grain: about 100 KB at quality 90.
    """
    rng = np.random.default_rng(seed)
    h, w = IMAGE_SIZE
    coarse = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    detail = cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8), (w, h),
                        interpolation=cv2.INTER_LINEAR)
    img = 0.5 * coarse + 0.5 * detail + rng.normal(0, 8, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_jpeg_imagenet(root: str, num_images: int, num_classes: int = 100) -> dict:
    """Write (once) ``num_images`` JPEGs in ImageNet layout; returns ``{'images', 'mean_kb'}``.

    ``root/train/n{class:08d}/n{class:08d}_{i}.JPEG`` and ``root/meta/train.txt`` ("path label" lines);
    image i shows ``synthetic_photo(i)`` and has class ``i % num_classes``. A marker file records the
    parameters; a matching one with at least ``num_images`` images means the data is there (the
    benchmark's datasets read the first ``num_images``).
    """
    params = dict(images=num_images, classes=num_classes, size=list(IMAGE_SIZE), quality=JPEG_QUALITY, version=1)
    marker = osp.join(root, 'meta', 'stand_in.json')
    if osp.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if {k: done.get(k) for k in params if k != 'images'} == {k: v for k, v in params.items() if k != 'images'} \
                and done.get('images', 0) >= num_images:
            return done
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    lines, sizes = [], []
    for i in range(num_images):
        wnid = f'n{i % num_classes:08d}'
        rel = f'{wnid}/{wnid}_{i}.JPEG'
        path = osp.join(root, 'train', rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        ok, buf = cv2.imencode('.JPEG', synthetic_photo(i), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok, path
        buf.tofile(path)
        sizes.append(buf.size)
        lines.append(f'{rel} {i % num_classes}')
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    done = dict(params, mean_kb=float(np.mean(sizes)) / 1e3)
    with open(marker, 'w') as f:
        json.dump(done, f)
    return done


# ----------------------------------------------------------------------------------------------
# Models and the three training modes
# ----------------------------------------------------------------------------------------------
def classifier(depth: int, soft: bool = False) -> dict:
    """An mmpretrain ImageNet ResNet classifier (1000 classes) with ImageNet's data preprocessor.

    Args:
        depth: ResNet depth.
        soft: its head's cross-entropy takes soft targets (``gt_score``, FKD) instead of class indices.
    """
    base = Config.fromfile(PLAIN_BASE)
    return dict(_scope_='mmpretrain', type='ImageClassifier',
                data_preprocessor=dict(type='ClsDataPreprocessor', **base.data_preprocessor),
                backbone=dict(type='ResNet', depth=depth, num_stages=4, out_indices=(3, ), style='pytorch'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=1000, in_channels=512 if depth < 50 else 2048,
                          loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=soft)))


def image_dataset(pipeline: list, num_images: int) -> dict:
    return dict(type='ImageNet', data_root=DATA_ROOT, split='train', pipeline=pipeline, indices=num_images,
                _scope_='mmpretrain')


def loader(dataset: dict, batch_size: int, workers: int, **extra) -> dict:
    return dict(batch_size=batch_size, num_workers=workers, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=True), dataset=dataset, **extra)


def plain_config(args) -> Config:
    """mmpretrain's ImageNet training pipeline at ``args.size``, the ResNet-18 student."""
    pipeline = Config.fromfile(PLAIN_BASE).train_pipeline
    for t in pipeline:
        if t['type'] == 'RandomResizedCrop':
            t['scale'] = args.size
    return Config(dict(model=classifier(18), train_dataloader=loader(image_dataset(pipeline, args.images),
                                                                    args.crops, args.workers)))


def kd_config(args) -> Config:
    """Online KD: MMRazor's SingleTeacherDistill with the distiller of our logit-KD config (KL, tau 4, on
    head.fc), ResNet-34 teacher forward on every crop."""
    cfg = plain_config(args)
    cfg.model = dict(Config.fromfile(KD_CONFIG).model.to_dict(), architecture=classifier(18), teacher=classifier(34),
                     teacher_ckpt=None)
    return cfg


def fkd_config(args, store_dir: str, m: int) -> Config:
    """Our ImageNet FKD config with the ResNet-18 student, ``crops / m`` images of m crops per step.

    Its ColorJitter is left out so the per-crop work matches the plain pipeline's.
    """
    cfg = Config.fromfile(FKD_CONFIG)
    cfg.model.architecture = classifier(18, soft=True)
    data = cfg.train_dataloader
    pipeline = [t for t in data.dataset.pipeline if t['type'] != 'ColorJitter']
    for t in pipeline:
        if t['type'] == 'FKDReplayCrop':
            t['scale'] = args.size
    dataset = dict(data.dataset, store_dir=store_dir, crops_per_image=m, pipeline=pipeline,
                   dataset=image_dataset(data.dataset.dataset.pipeline, args.images))
    return Config(dict(model=cfg.model, train_dataloader=loader(dataset, args.crops // m, args.workers,
                                                                collate_fn=data.collate_fn)))


# ----------------------------------------------------------------------------------------------
# Label stores
# ----------------------------------------------------------------------------------------------
def label_config(args, store_dir: str, num_images: int, size: int, amp: str = 'none', channels_last: bool = False,
                 checkpoint: Optional[str] = None) -> Config:
    """Our ImageNet label config with the ResNet-34 teacher (``checkpoint`` or random weights) at ``size`` px,
    M = 8."""
    cfg = Config.fromfile(LABEL_CONFIG)
    cfg.teachers = [dict(model=classifier(34), checkpoint=checkpoint)]
    cfg.label_dataset = image_dataset(cfg.label_dataset.pipeline, num_images)
    cfg.fkd_generation.update(store_dir=store_dir, num_crops=NUM_CROPS, input_size=size, images_per_batch=4,
                              crops_per_forward=None, shard_size=1000,
                              num_workers=args.workers, device=args.device, amp=amp, channels_last=channels_last)
    return cfg


def training_store(args) -> str:
    """The store the FKD modes train on (cached; teacher at ``--store-size`` px: label values do not change
    training speed, and small teacher crops keep this one-off cost low)."""
    store = osp.join(DATA_ROOT, f'labels_n{args.images}_m{NUM_CROPS}_t{args.store_size}')
    start = time.perf_counter()
    report = generate_labels(label_config(args, store, args.images, args.store_size), progress=False,
                             log=lambda *_: None)
    if report.images:
        print(f'[store] labelled {report.images} images x {NUM_CROPS} crops in {time.perf_counter() - start:.0f} s')
    return store


def generation_precision(args) -> None:
    """Label generation in fp32, fp32 + channels_last, bf16, bf16 + channels_last: crops/s and crops per
    CPU-second (medians of alternating rounds; loading in this process, so its CPU time is all of it) and the
    stored labels' max |difference| to the fp32 store.

    The teacher is calibrated (:func:`fkd_common.calibrated_checkpoint`, logit std 5 over 1000 classes) so
    its labels are as peaked as a trained teacher's; a random one's near-uniform labels hide precision loss.
    """
    tmp = tempfile.mkdtemp(prefix='fkd_jpeg_gen_')
    with open(osp.join(DATA_ROOT, 'meta', 'train.txt')) as f:
        files = [osp.join(DATA_ROOT, 'train', line.split()[0]) for line in f.readlines()[:32]]
    images = np.stack([cv2.resize(cv2.imread(path), (args.gen_size, args.gen_size)) for path in files])
    ckpt = calibrated_checkpoint(classifier(34), images, osp.join(tmp, 'teacher.pth'), logit_std=5.0)
    variants = {'fp32': ('none', False), 'fp32 + channels_last': ('none', True),
                'bf16 autocast': ('bf16', False), 'bf16 + channels_last': ('bf16', True)}
    rates, cpu_rates = {name: [] for name in variants}, {name: [] for name in variants}
    for r in range(args.gen_rounds):
        for name, (amp, nhwc) in variants.items():
            cfg = label_config(args, osp.join(tmp, f'{r}_{amp}_{nhwc}'), args.gen_images, args.gen_size, amp, nhwc,
                               ckpt)
            cfg.fkd_generation.num_workers = 0
            cpu = time.process_time()
            rep = generate_labels(cfg, progress=False, log=lambda *_: None)
            rates[name].append(rep.crops_per_s)
            cpu_rates[name].append(rep.crops / (time.process_time() - cpu))
    rate, cpu_rate = ({k: float(np.median(v)) for k, v in d.items()} for d in (rates, cpu_rates))
    reference = stored_labels(osp.join(tmp, '0_none_False'))
    print(f'\n[generation] teacher ResNet-34 at {args.gen_size} px, {args.gen_images} images x {NUM_CROPS} crops, '
          f'loading in the main process, medians of {args.gen_rounds} alternating rounds; labels: MS top-5 fp16, '
          f'mean top-1 probability {reference.max(dim=1).values.mean():.2f}')
    print(f'  {"teacher":22s} {"crops/s":>8s} {"vs fp32":>8s} {"crops/CPU-s":>12s} {"vs fp32":>8s} '
          f'{"max |p - p_fp32|":>17s} {"mean max":>9s} {"top-1 agree":>12s}')
    for name, (amp, nhwc) in variants.items():
        labels = stored_labels(osp.join(tmp, f'0_{amp}_{nhwc}'))
        diff = (labels - reference).abs().amax(dim=1)
        agree = (labels.argmax(1) == reference.argmax(1)).float().mean().item()
        print(f'  {name:22s} {rate[name]:8.1f} {rate[name] / rate["fp32"]:7.2f}x {cpu_rate[name]:12.1f} '
              f'{cpu_rate[name] / cpu_rate["fp32"]:7.2f}x {diff.max().item():17.2e} {diff.mean().item():9.1e} '
              f'{100 * agree:11.1f}%')
    shutil.rmtree(tmp, ignore_errors=True)


def stored_labels(store_dir: str) -> torch.Tensor:
    store = LabelStore(store_dir, verify='quick')
    return torch.cat([store.soft_labels(i, np.arange(store.num_crops)) for i in range(len(store))])


# ----------------------------------------------------------------------------------------------
# Breakdown
# ----------------------------------------------------------------------------------------------
def item_seconds(datasets: dict, count: int, clock: Callable[[], float]) -> dict:
    """Median ``clock`` seconds of ``dataset[i]`` per dataset over images 1..count, timed interleaved image by
    image (load drifts hit every dataset alike)."""
    times = {name: [] for name in datasets}
    for i in range(count + 1):
        for name, dataset in datasets.items():
            start = clock()
            dataset[i]
            if i:  # image 0 warms up
                times[name].append(clock() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def breakdown(args, configs: dict, trainers: dict, cpu: dict) -> None:
    """Per-crop costs measured one by one in this process, their sum next to the CPU per crop measured in
    training, and the FKD / plain ratio they predict."""
    clock = time.process_time if args.device == 'cpu' else time.perf_counter
    datasets = {name: PRETRAIN_DATASETS.build(cfg.train_dataloader.dataset.to_dict()) for name, cfg in configs.items()}
    datasets['decode'] = PRETRAIN_DATASETS.build(image_dataset([dict(type='LoadImageFromFile')], args.images))
    item = item_seconds(datasets, args.breakdown_images, clock)
    rows = {}
    for name, cfg in configs.items():
        m = cfg.train_dataloader.dataset.get('crops_per_image', 1)
        crop = (item[name] - item['decode']) / m  # crop/resize/flip/pack (+ label read and decode for FKD) per crop
        rows[name] = (item['decode'] / m, crop, trainers[name].step_seconds_per_sample(args.breakdown_steps, clock))
    unit = 'CPU ms' if args.device == 'cpu' else 'ms'
    print(f'\n[breakdown] {unit} per crop, each part measured alone in the main process ({torch.get_num_threads()} '
          'torch thread(s), medians); "crop+" = crop/resize/flip/pack (FKD: + label record read and decode); '
          '"training" = CPU per crop of all processes in [training]; "rest" = training - sum (batch transfer '
          'between processes, collate, loader overhead)')
    print(f'  {"mode":10s} {"decode":>7s} {"crop+":>7s} {"fwd/bwd":>8s} {"sum":>7s} {"decode %":>9s} '
          f'{"training":>9s} {"rest":>7s}')
    for name, (dec, crop, step) in rows.items():
        total = dec + crop + step
        print(f'  {name:10s} {1e3 * dec:7.2f} {1e3 * crop:7.2f} {1e3 * step:8.2f} {1e3 * total:7.2f} '
              f'{100 * dec / total:8.1f}% {1e3 * cpu[name]:9.2f} {1e3 * (cpu[name] - total):7.2f}')
    plain = sum(rows['plain'])
    for name, parts in rows.items():
        if name.startswith('FKD'):
            print(f'  {name} / plain, crops per CPU-second: predicted by the sums {plain / sum(parts):.3f}, '
                  f'measured in training {cpu["plain"] / cpu[name]:.3f}')


# ----------------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=2000, help='JPEGs in the stand-in (generated once)')
    parser.add_argument('--size', type=int, default=64, help='student crop px')
    parser.add_argument('--crops', type=int, default=32, help='crops per train step (plain: images per step)')
    parser.add_argument('--workers', type=int, default=2, help='DataLoader workers')
    parser.add_argument('--iters', type=int, default=8, help='timed train steps per mode and round')
    parser.add_argument('--rounds', type=int, default=3, help='rounds alternating the modes (median reported)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads of the main process')
    parser.add_argument('--device', default='cpu', help='where the student and teachers run')
    parser.add_argument('--store-size', type=int, default=32, help='teacher crop px of the training label store')
    parser.add_argument('--gen-images', type=int, default=16, help='images labelled per generation variant')
    parser.add_argument('--gen-size', type=int, default=64, help='teacher crop px in the generation benchmark')
    parser.add_argument('--gen-rounds', type=int, default=3)
    parser.add_argument('--breakdown-images', type=int, default=40)
    parser.add_argument('--breakdown-steps', type=int, default=5)
    parser.add_argument('--skip-generation', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
    print(f'machine: {os.cpu_count()} cores, load: {load}; torch {torch.__version__}, {args.threads} thread(s), '
          f'device {args.device}')
    data = make_jpeg_imagenet(DATA_ROOT, args.images)
    print(f'data: {args.images} of {data["images"]} JPEGs {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} q{JPEG_QUALITY}, '
          f'mean {data["mean_kb"]:.0f} KB ({DATA_ROOT}); student ResNet-18 at {args.size} px, {args.crops} crops '
          f'per step, {args.workers} workers')
    store = training_store(args)
    configs = {'plain': plain_config(args), 'online KD': kd_config(args)}
    configs.update({f'FKD m={m}': fkd_config(args, store, m) for m in (4, 8)})
    trainers = {name: Trainer(cfg, device=args.device) for name, cfg in configs.items()}
    rates, cpu = compare(trainers, args.iters, args.rounds)
    print(f'\n[training] median of {args.rounds} alternating rounds of {args.iters} steps (2 warm-up steps per round, '
          'fresh loader workers), data loading included; CPU = all processes (main + workers) per crop')
    print(f'  {"mode":10s} {"crops/s":>8s} {"images/s":>9s} {"/ plain":>8s} {"/ online KD":>12s} '
          f'{"CPU ms/crop":>12s} {"crops/CPU-s / plain":>20s}')
    for name, cfg in configs.items():
        m = cfg.train_dataloader.dataset.get('crops_per_image', 1)
        print(f'  {name:10s} {rates[name]:8.1f} {rates[name] / m:9.1f} {rates[name] / rates["plain"]:8.3f} '
              f'{rates[name] / rates["online KD"]:12.3f} {1e3 * cpu[name]:12.2f} {cpu["plain"] / cpu[name]:20.3f}')
    breakdown(args, configs, trainers, cpu)
    if not args.skip_generation:
        generation_precision(args)
    print(f'\nload after: {subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}')


if __name__ == '__main__':
    main()
