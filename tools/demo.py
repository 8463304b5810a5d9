"""The main job: distillation on the built-in digits data, one table comparing every method.

    python tools/demo.py [--seeds 0 1 2] [--methods fkd vrm kd_zero amd acmkd] [--work-dir work_dirs/demo]

Generates the demo data if missing, trains the teacher (resnet20, seed 0: it teaches every row), the student
(resnet8x0.5) without distillation and with vanilla logit KD, then each method's row (``mmkd_ext/<method>/demo.py``),
every row with the same seeds, and prints top-1 accuracy (mean and std over seeds), the paired difference to the
student with its verdict (paired t-test over the seeds, :mod:`mmkd_ext.demo_report`) and wall time. Writes
``demo_table.md``, ``demo_table.json`` and ``demo_table.png`` to the work dir. Low-data regime: 300 training images,
500 validation images.
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
from mmkd_ext.demo_report import format_table, plot_table  # noqa: E402
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


def run_seeds(name, config, ctx, cfg_options=None, note=''):
    cpu = time.process_time()
    results = []
    for seed in ctx.seeds:
        results.append(train_config(config, ctx.work_dir(name.split(' ')[0], seed), cfg_options, seed=seed))
        print(f'[demo]   seed {seed}: top-1 {results[-1].accuracy:.2f} % in {results[-1].wall_s:.0f} s', flush=True)
    return DemoRow(name, [r.accuracy for r in results], sum(r.wall_s for r in results), note, list(ctx.seeds),
                   time.process_time() - cpu)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    make_digits('data/demo/digits')
    quick = dict(train_cfg=dict(max_epochs=3, val_interval=3)) if args.quick else {}
    print(f'[demo] training the teacher (resnet20) on 300 images, work dir {args.work_dir}', flush=True)
    cpu = time.process_time()
    teacher = train_config(TEACHER, osp.join(args.work_dir, 'teacher'), quick, seed=0)
    print(f'[demo]   teacher top-1 {teacher.accuracy:.2f} % in {teacher.wall_s:.0f} s', flush=True)
    ckpt = osp.join(teacher.work_dir, f"epoch_{3 if args.quick else 30}.pth")
    ctx = DemoContext(args.work_dir, ckpt, teacher.accuracy, args.seeds, quick=args.quick)
    teacher_row = DemoRow('teacher resnet20 (0.27 M params)', [teacher.accuracy], teacher.wall_s,
                          'seed 0; the teacher of every row (reference line)', [0], time.process_time() - cpu)
    print('[demo] student resnet8x0.5 without distillation', flush=True)
    student = run_seeds('student resnet8x0.5 (0.02 M params)', STUDENT, ctx, quick)
    print('[demo] student with vanilla logit KD', flush=True)
    rows = [run_seeds('vanilla KD (KL, tau=4)', KD, ctx, dict(model=dict(teacher_ckpt=ckpt), **quick))]
    for room in args.methods:
        try:
            module = importlib.import_module(f'mmkd_ext.{room}.demo')
        except ModuleNotFoundError as err:
            if err.name != f'mmkd_ext.{room}.demo':
                raise
            print(f'[demo] {room}: no demo row yet', flush=True)
            continue
        print(f'[demo] {room}', flush=True)
        cpu = time.process_time()
        room_rows = module.run_demo(ctx)
        room_rows[0].cpu_s = time.process_time() - cpu  # a room's later rows come from the same runs
        rows.extend(room_rows)
    total = time.perf_counter() - start
    write_report(args.work_dir, teacher_row, student, rows, total, time.process_time())
    return [teacher_row, student] + rows


def write_report(work_dir, teacher, student, rows, total_s, total_cpu_s=None):
    """Print the table and write ``demo_table.{md,json,png}`` under ``work_dir`` (wall and CPU seconds of the demo:
    on a shared machine the wall time grows with the load, the CPU time much less)."""
    cpu = '' if total_cpu_s is None else f' ({total_cpu_s:.0f} s CPU)'
    table = format_table([teacher, student] + rows, student)
    seeds = ','.join(str(s) for s in student.seeds)
    print(f'\nDigits demo (300 train / 500 val images, 32x32), seeds {seeds}, total {total_s:.0f} s{cpu}\n\n{table}')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'demo_table.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'demo_table.json'), 'w') as f:
        saved = [dict(name=r.name, seeds=r.seeds, accuracies=r.accuracies, wall_s=r.wall_s, cpu_s=r.cpu_s, note=r.note)
                 for r in [teacher, student] + rows]
        json.dump(dict(total_s=total_s, total_cpu_s=total_cpu_s, rows=saved), f, indent=1)
    title = (f'digits demo, seeds {seeds}: green/red = above/below the student beyond noise (paired t-test, p<0.05), '
             f'grey = within noise\nnumbers vary by machine; total {total_s / 60:.1f} min{cpu}')
    png = plot_table(rows, student, teacher, osp.join(work_dir, 'demo_table.png'), title)
    print(f'[demo] wrote {osp.join(work_dir, "demo_table.md")} and {png}')
    return rows


if __name__ == '__main__':
    main()
