"""The main job: distillation on the built-in digits data, one table comparing every method.

    python tools/demo.py [--seeds 0 1 2] [--methods fkd vrm kd_zero amd acmkd] [--work-dir work_dirs/demo]

Generates the demo data if missing, trains the teacher (resnet20), the student (resnet8x0.5) without distillation and
with vanilla logit KD, then each method's row (``mmkd_ext/<method>/demo.py``), and prints top-1 accuracy (mean and
std over seeds) and wall time. Low-data regime: 300 training images, 500 validation images.
"""
import argparse
import importlib
import json
import os
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.demo_data import make_digits  # noqa: E402
from mmkd_ext.demo_runner import ROOMS, DemoContext, DemoRow, train_config  # noqa: E402

TEACHER = 'kd/resnet20_1xb32-30e_digits.py'
STUDENT = 'kd/resnet8x0.5_1xb32-30e_digits.py'
KD = 'kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='*', default=list(ROOMS), choices=list(ROOMS))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--quick', action='store_true', help='a few epochs only (smoke test of the pipeline)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads; 1 is fastest for these tiny models on a 2-core CPU')
    return parser.parse_args(argv)


def format_table(rows, student_mean):
    lines = ['| method | top-1 % (mean ± std over seeds) | Δ vs student | seeds | wall time | note |',
             '|---|---|---|---|---|---|']
    for row in rows:
        delta = '' if student_mean is None else f'{row.mean - student_mean:+.2f}'
        spread = f' ± {row.std:.2f}' if len(row.accuracies) > 1 else ''
        lines.append(f'| {row.name} | {row.mean:.2f}{spread} | {delta} | {len(row.accuracies)} | '
                     f'{row.wall_s:.0f} s | {row.note} |')
    return '\n'.join(lines)


def run_seeds(name, config, ctx, cfg_options=None, note=''):
    results = []
    for seed in ctx.seeds:
        results.append(train_config(config, ctx.work_dir(name.split(' ')[0], seed), cfg_options, seed=seed))
        print(f'[demo]   seed {seed}: top-1 {results[-1].accuracy:.2f} % in {results[-1].wall_s:.0f} s', flush=True)
    return DemoRow(name, [r.accuracy for r in results], sum(r.wall_s for r in results), note)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    make_digits('data/demo/digits')
    quick = dict(train_cfg=dict(max_epochs=3, val_interval=3)) if args.quick else {}
    print(f'[demo] training the teacher (resnet20) on 300 images, work dir {args.work_dir}', flush=True)
    teacher = train_config(TEACHER, osp.join(args.work_dir, 'teacher'), quick, seed=0)
    print(f'[demo]   teacher top-1 {teacher.accuracy:.2f} % in {teacher.wall_s:.0f} s', flush=True)
    ckpt = osp.join(teacher.work_dir, f"epoch_{3 if args.quick else 30}.pth")
    ctx = DemoContext(args.work_dir, ckpt, teacher.accuracy, args.seeds, quick=args.quick)
    rows = [DemoRow('teacher resnet20 (0.27 M params)', [teacher.accuracy], teacher.wall_s, 'seed 0')]
    print('[demo] student resnet8x0.5 without distillation', flush=True)
    rows.append(run_seeds('student resnet8x0.5 (0.02 M params)', STUDENT, ctx, quick))
    student_mean = rows[-1].mean
    print('[demo] student with vanilla logit KD', flush=True)
    rows.append(run_seeds('vanilla KD (KL, tau=4)', KD, ctx, dict(model=dict(teacher_ckpt=ckpt), **quick)))
    for room in args.methods:
        try:
            module = importlib.import_module(f'mmkd_ext.{room}.demo')
        except ModuleNotFoundError as err:
            if err.name != f'mmkd_ext.{room}.demo':
                raise
            print(f'[demo] {room}: no demo row yet', flush=True)
            continue
        print(f'[demo] {room}', flush=True)
        rows.extend(module.run_demo(ctx))
    table = format_table(rows, student_mean)
    total = time.perf_counter() - start
    print(f'\nDigits demo (300 train / 500 val images, 32x32), total {total:.0f} s\n\n{table}')
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'demo_table.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'demo_table.json'), 'w') as f:
        json.dump([dict(name=r.name, accuracies=r.accuracies, wall_s=r.wall_s, note=r.note) for r in rows], f, indent=1)
    return rows


if __name__ == '__main__':
    main()
