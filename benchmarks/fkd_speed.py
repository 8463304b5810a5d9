"""FKD speed claims (METHODS.md 4.7), measured side by side on the digits demo (CPU, seconds).

    python benchmarks/fkd_speed.py [--teacher-ckpt work_dirs/digits_teacher/epoch_30.pth] [--iters 20]

1. Training throughput, same student (resnet8), same data, same 32 samples per step, data loading included:
   plain supervised training, online KD (MMRazor SingleTeacherDistill, teacher resnet20 forward every step)
   and FKD (FKDDistill on the label store, 16 images x m=2 crops). Prints samples/s, FKD/plain, KD/FKD
   speed-up and the ideal speed-up ``1 + teacher_forward_cost / student_step_cost``.
2. Label store bytes per crop for every strategy (the real record layout, M=200; C=10 and C=1000).
3. Label generation throughput (crops/s) with 1 process and, with --two-procs, 2 processes (torchrun).
Teacher weights do not change speed; without --teacher-ckpt a random resnet20 is used.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import torch
from fkd_common import ROOT, Trainer, compare, random_checkpoint
from mmengine.config import Config

os.chdir(ROOT)

from mmkd_ext.demo_data import make_digits  # noqa: E402
from mmkd_ext.fkd.compression import STRATEGIES, LabelCodec  # noqa: E402
from mmkd_ext.fkd.generation import generate_labels  # noqa: E402
from mmkd_ext.fkd.store import record_dtype  # noqa: E402
from mmkd_ext.registry import MODELS  # noqa: E402

LABEL_CONFIG = 'configs/fkd/labels_resnet20_m30-ms5_digits.py'
PLAIN = 'configs/kd/resnet8x0.5_1xb32-30e_digits.py'
ONLINE_KD = 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'
FKD = 'configs/fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py'


def random_teacher(path):
    return random_checkpoint(Config.fromfile(LABEL_CONFIG).teachers[0].model.to_dict(), path)


@torch.no_grad()
def forward_cost(model_cfg, batch=32, reps=20):
    model = MODELS.build(model_cfg).eval()
    x = torch.randn(batch, 3, 32, 32)
    model(x, mode='tensor')
    start = time.perf_counter()
    for _ in range(reps):
        model(x, mode='tensor')
    return (time.perf_counter() - start) / reps


def step_cost(model_cfg, batch=32, reps=20):
    model = MODELS.build(model_cfg).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch, ))
    start = None
    for i in range(reps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x, mode='tensor'), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / reps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--teacher-ckpt', default=None)
    parser.add_argument('--iters', type=int, default=10, help='train steps per mode and round')
    parser.add_argument('--rounds', type=int, default=5, help='rounds alternating the modes (median reported)')
    parser.add_argument('--gen-images', type=int, default=60, help='images labelled in the generation benchmark')
    parser.add_argument('--two-procs', action='store_true', help='also time 2-process generation (torchrun)')
    args = parser.parse_args()
    make_digits(osp.join(ROOT, 'data/demo/digits'))
    tmp = tempfile.mkdtemp(prefix='fkd_bench_')
    ckpt = args.teacher_ckpt or random_teacher(osp.join(tmp, 'teacher.pth'))
    print(f'torch threads: {torch.get_num_threads()}; teacher checkpoint: {ckpt}')

    # 3. generation (also makes the store used for training)
    label_cfg = Config.fromfile(LABEL_CONFIG)
    label_cfg.teachers[0].checkpoint = ckpt
    label_cfg.fkd_generation.update(store_dir=osp.join(tmp, 'store'), num_crops=8)
    rep = generate_labels(label_cfg, progress=False, log=lambda *_: None)
    print(f'\n[generation] 1 process: {rep.images} images x {label_cfg.fkd_generation.num_crops} crops in '
          f'{rep.seconds:.1f} s = {rep.crops_per_s:.0f} crops/s ({rep.manifest["bytes_per_crop"]:.0f} B/crop on disk)')
    if args.two_procs:
        opts = ['--cfg-options', f'teachers.0.checkpoint={ckpt}', f'fkd_generation.store_dir={tmp}/store2',
                'fkd_generation.num_crops=8', f'label_dataset.indices={args.gen_images}',
                'fkd_generation.shard_size=20']  # several shards, so both ranks get work
        out = subprocess.run(['bash', 'tools/fkd/dist_generate_labels.sh', LABEL_CONFIG, '2', *opts, '--no-progress'],
                             env=dict(os.environ, PYTHON=sys.executable, PORT='29541'), capture_output=True, text=True)
        rates = [float(line.split('(')[-1].split(' crops/s')[0]) for line in out.stdout.splitlines()
                 if 'crops/s' in line]
        print(f'[generation] 2 processes: {" + ".join(f"{r:.0f}" for r in rates)} = {sum(rates):.0f} crops/s '
              f'({len(rates)} ranks, {args.gen_images} images)')

    # 1. training throughput
    store = {'train_dataloader.dataset.store_dir': osp.join(tmp, 'store')}
    rates, _ = compare(dict(plain=Trainer(PLAIN), kd=Trainer(ONLINE_KD, {'model.teacher_ckpt': ckpt}),
                         fkd=Trainer(FKD, store)), args.iters, args.rounds)
    plain, kd, fkd = rates['plain'], rates['kd'], rates['fkd']
    models = Config.fromfile('configs/_base_/models/digits_classifiers.py')
    t_fwd = forward_cost(models.digits_teacher.to_dict())
    s_step = step_cost(models.digits_student.to_dict())
    print(f'\n[training] samples/s, median of {args.rounds} alternating rounds of {args.iters} steps '
          '(2 warm-up steps per round, 32 samples per step, data loading included, num_workers=0)')
    print(f'  plain supervised   {plain:8.1f}')
    print(f'  online KD (MMRazor){kd:8.1f}')
    print(f'  FKD (label store)  {fkd:8.1f}')
    print(f'  FKD / plain        {fkd / plain:8.3f}   (target >= 0.95)')
    print(f'  speed-up FKD vs KD {fkd / kd:8.2f}x  ideal 1 + teacher_fwd/student_step = 1 + '
          f'{t_fwd * 1e3:.1f}/{s_step * 1e3:.1f} ms = {1 + t_fwd / s_step:.2f}x')

    # 2. storage
    print('\n[store] bytes per crop (record layout incl. 4 coords + flip), M=200')
    print(f'  {"strategy":28s} {"C=10":>8s} {"C=1000":>8s}')
    for strategy in STRATEGIES:
        for k in ((5, 10) if strategy in ('marginal_smoothing', 'marginal_renorm') else (5, )):
            sizes = [f'{record_dtype(LabelCodec(strategy, c, k=k), 200).itemsize / 200:.0f}' if k < c else '-'
                     for c in (10, 1000)]
            name = strategy + (f' K={k}' if strategy.startswith('marginal') else '')
            print(f'  {name:28s} {sizes[0]:>8s} {sizes[1]:>8s}')


if __name__ == '__main__':
    main()
