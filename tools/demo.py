"""The main job: distillation on the built-in digits data, one table comparing every method.

    python tools/demo.py [--seeds 0 1 2] [--methods fkd vrm kd_zero amd acmkd] [--work-dir work_dirs/demo] [--jobs N]

Generates the demo data if missing, trains the teacher (resnet20, seed 0: it teaches every row), the student
(resnet8x0.5) without distillation and with vanilla logit KD (as configured, and in the FKD paper's setting), then
each method's row (``mmkd_ext/<method>/demo.py``), every row with the same 5 seeds and the same budget (30 epochs of
the 300 training images, batch 32: 300 optimizer steps; the table states each row's steps, views, teacher forwards
and what it selects on, from the row plans of :mod:`mmkd_ext.demo_runner`). Nothing is chosen on the validation
split: every row is validated once, after its last epoch. Prints top-1 accuracy (mean and std over seeds), the paired
difference to the student with its 95 % interval and verdict (paired t-test over the seeds,
:mod:`mmkd_ext.demo_report`) and wall time. Writes ``demo_table.md``, ``demo_table.json`` and ``demo_table.png`` to
the work dir. Low-data regime: 300 training images; the other 1,497 digits validate. Rows run side by side in
``--jobs`` worker processes (one per core, single-threaded: the student trains while the teacher does, then the
method rows, longest first); wall time about halves on 2 cores.
"""
import argparse
import functools
import glob
import json
import os
import os.path as osp
import resource
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.demo_data import make_digits  # noqa: E402
from mmkd_ext.demo_report import format_table, plot_table  # noqa: E402
from mmkd_ext.demo_runner import (  # noqa: E402
    ROOMS,
    DemoContext,
    core_plans,
    final_only,
    room_rows,
    row_executor,
    train_plan,
    train_teacher_row,
)

TEACHER = 'kd/resnet20_1xb32-30e_digits.py'
DIGITS = 'data/demo/digits'
# rows started longest first, so that two workers finish together: CPU seconds per row of the 2026-12-01 run with 3
# seeds (KD-Zero 245, VRM 198, ACMKD 157 at 20 epochs, vanilla KD 110, AMD 62, FKD 46), ACMKD now 30 epochs
LONGEST_FIRST = ('acmkd', 'vrm', 'kd_zero', 'kd', 'kd_t1', 'amd', 'fkd')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--methods', nargs='*', default=list(ROOMS), choices=list(ROOMS))
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--quick', action='store_true', help='a few epochs only (smoke test of the pipeline)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads per worker; 1 is fastest for these tiny models')
    parser.add_argument('--jobs', type=int, default=min(os.cpu_count() or 1, 4),
                        help='worker processes running rows side by side (default: CPU cores, at most 4; 1 runs '
                             'everything in this process)')
    return parser.parse_args(argv)


def _stop(pool) -> None:
    """After a failed row: cancel the queued rows and end the running ones (do not wait minutes for them)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list((getattr(pool, '_processes', None) or {}).values()):
        process.terminate()


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    make_digits(DIGITS)
    no_teacher = DemoContext(args.work_dir, '', float('nan'), args.seeds, quick=args.quick)
    student_plan = core_plans(no_teacher)[0]
    epochs = student_plan.cfg().train_cfg.max_epochs
    teacher_dir = osp.join(args.work_dir, 'teacher')
    ckpt = osp.join(teacher_dir, f'epoch_{epochs}.pth')
    print(f'[demo] teacher (resnet20) and student (resnet8x0.5) on 300 images, then every method; {args.jobs} '
          f'worker(s), work dir {args.work_dir}', flush=True)
    pool = row_executor(args.jobs, args.threads)
    try:
        teacher_job = pool.submit(train_teacher_row, 'teacher resnet20 (0.27 M params)', TEACHER, teacher_dir,
                                  final_only(epochs))
        # the student without distillation needs no teacher: it trains while the teacher does
        student_job = pool.submit(train_plan, student_plan, no_teacher)
        for key, job in (('teacher', teacher_job), ('student', student_job)):
            job.add_done_callback(functools.partial(save_finished, args.work_dir, key))
        teacher_row = teacher_job.result()
        ctx = DemoContext(args.work_dir, ckpt, teacher_row.accuracies[0], args.seeds, quick=args.quick)
        kd_plans = {plan.key: plan for plan in core_plans(ctx)[1:]}
        jobs = {}
        for key in sorted(list(kd_plans) + list(args.methods), key=LONGEST_FIRST.index):
            jobs[key] = (pool.submit(train_plan, kd_plans[key], ctx) if key in kd_plans
                         else pool.submit(room_rows, key, ctx))
            jobs[key].add_done_callback(functools.partial(save_finished, args.work_dir, key))
        student = student_job.result()
        rows = [jobs[key].result() for key in kd_plans]
        rows += [row for room in args.methods for row in jobs[room].result()]
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    total = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() + children.ru_utime + children.ru_stime  # the workers have ended
    write_report(args.work_dir, teacher_row, student, rows, total, cpu)
    return [teacher_row, student] + rows


def save_finished(work_dir: str, key: str, job) -> None:
    """Write a finished job's rows to ``<work_dir>/rows/<key>.json`` at once (a demo stopped half-way keeps them)."""
    if job.cancelled() or job.exception() is not None:
        return
    rows = job.result() if isinstance(job.result(), list) else [job.result()]
    os.makedirs(osp.join(work_dir, 'rows'), exist_ok=True)
    with open(osp.join(work_dir, 'rows', f'{key}.json'), 'w') as f:
        json.dump([row_record(r) for r in rows], f, indent=1)


def row_record(row) -> dict:
    """What ``demo_table.json`` keeps of a row."""
    return dict(name=row.name, seeds=row.seeds, accuracies=row.accuracies, wall_s=row.wall_s, cpu_s=row.cpu_s,
                note=row.note, budget=row.budget)


def split_sizes(root: str = DIGITS) -> str:
    """``'300 train / 1497 val'``: the images of the digits splits on disk."""
    return ' / '.join(f"{len(glob.glob(osp.join(root, split, '*', '*.png')))} {split}" for split in ('train', 'val'))


def write_report(work_dir, teacher, student, rows, total_s, total_cpu_s=None):
    """Print the table and write ``demo_table.{md,json,png}`` under ``work_dir`` (wall and CPU seconds of the demo:
    on a shared machine the wall time grows with the load, the CPU time much less)."""
    cpu = '' if total_cpu_s is None else f' ({total_cpu_s:.0f} s CPU)'
    table = format_table([teacher, student] + rows, student)
    seeds = ','.join(str(s) for s in student.seeds)
    print(f'\nDigits demo ({split_sizes()} images, 32x32), seeds {seeds}, total {total_s:.0f} s{cpu}\n\n{table}')
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, 'demo_table.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'demo_table.json'), 'w') as f:
        saved = [row_record(r) for r in [teacher, student] + rows]
        json.dump(dict(total_s=total_s, total_cpu_s=total_cpu_s, rows=saved), f, indent=1)
    title = (f'digits demo ({split_sizes()}), seeds {seeds}: green/red = above/below the student beyond noise '
             f'(paired t-test, p<0.05), grey = within noise\nnumbers vary by machine; '
             f'total {total_s / 60:.1f} min{cpu}')
    png = plot_table(rows, student, teacher, osp.join(work_dir, 'demo_table.png'), title)
    print(f'[demo] wrote {osp.join(work_dir, "demo_table.md")} and {png}')
    return rows


if __name__ == '__main__':
    main()
