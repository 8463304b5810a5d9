"""The GPU check: one demo config per method x task through every stage of its run plan, and dist_train.sh.

    bash tools/misc/gpu_check.sh [--only SUBSTRING] [--iters N] [--budget-s S] [--no-amp] [--out DIR]
    python tools/misc/gpu_check.py --list          # the plan, on any machine

Each check is a subprocess (a CUDA error cannot poison the next one) on the built-in demo data
(``tools/misc/make_demo_data.py``), with and without AMP, and the table gives iterations per second
(MMEngine's per-iteration ``time``, first two iterations dropped), the peak GPU memory
(``torch.cuda.max_memory_allocated``) and ok / FAIL / skipped with the reason. Teachers are trained first for
a few iterations so that every distillation config loads a real checkpoint. Every other config runs through
``tools/misc/check_config.py --device cuda`` (:func:`plan_command`): the stages of its run plan
(:mod:`mmkd_ext.run_plans`, registered by the method rooms; ``--list`` shows them), each shortened to ``--iters``
iterations: build, train, val, checkpoint, resume, test, and a room's own stages (label generation, a search and
its best config, the pipeline with a pruned teacher and its export, an export after the attention epochs).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import re
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # mmkd_ext from this checkout
RESULT_TAG = 'GPU_CHECK_RESULT '
FIRST_ITERS_DROPPED = 2  # warm-up (cudnn autotune, allocator growth)


@dataclass
class Check:
    """One row of the table: ``argv`` after the interpreter, run in a subprocess.

    Attributes:
        name: row name (``method/task[+amp]``).
        argv: script and arguments (the script is run by :func:`run_child` under the GPU-memory probe).
        produces: name of a checkpoint other checks use (``{name}`` placeholders in their argv).
        needs: checkpoints this check needs.
        launcher: 'child' (python script under the probe) or 'shell' (a bash command line, e.g. dist_train.sh).
        skip: reason to skip without running.
        stages: the run plan's stages the check goes through (``--list`` shows them).
    """

    name: str
    argv: List[str]
    produces: Optional[str] = None
    needs: Sequence[str] = ()
    launcher: str = 'child'
    skip: str = ''
    stages: str = ''


@dataclass
class Row:
    """A finished check: ``status`` is 'ok', 'FAIL' or 'skipped'; ``note`` says why."""

    name: str
    status: str
    its: Optional[float] = None
    peak_mib: Optional[float] = None
    seconds: Optional[float] = None
    note: str = ''
    extra: Dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# What runs
# ------------------------------------------------------------------------------------------------
def config_command(config: str, work_dir: str, iters: int, amp: bool, options: Sequence[str] = ()) -> List[str]:
    """``tools/train.py`` on ``config`` for about ``iters`` iterations (the one place to switch to check_config)."""
    return ['tools/train.py', config, '--work-dir', work_dir, *(['--amp'] if amp else []),
            '--cfg-options', *short_run_options(config, iters), *options]


def short_run_options(config: str, iters: int) -> List[str]:
    """``--cfg-options`` stopping ``config`` after ``iters`` iterations (iteration loops) or one epoch; validate."""
    from mmengine.config import Config
    cfg = Config.fromfile(config, import_custom_modules=False)
    opts = ['default_hooks.logger.interval=1', 'randomness.seed=0']
    if 'max_iters' in cfg.train_cfg:
        return opts + [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}']
    return opts + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']  # demo epochs are 10-15 iterations


def cfg(*parts: str) -> str:
    return osp.join('configs', *parts)


TEACHERS = {  # task -> (name of the checkpoint, demo teacher config): trained first, every other row distils from it
    'classification': ('cls_teacher', cfg('kd', 'resnet20_1xb32-30e_digits.py')),
    'detection': ('det_teacher', cfg('kd', 'retinanet_r18_1xb8-12e_shapes.py')),
    'segmentation': ('seg_teacher', cfg('kd', 'pspnet_r18-d8_1xb4-600it_cityscapes-demo.py')),
}
TASK_SHORT = {'classification': 'cls', 'detection': 'det', 'segmentation': 'seg'}
# one demo config per method x task; each runs every stage of its run plan (mmkd_ext/run_plans.py). Multi-stage
# plans first: a check that runs out of --budget-s skips the rows at the end
PLAN_CONFIGS = [cfg(*p.split('/')) for p in (
    'amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py',
    'acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py',
    'kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py',
    'fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py',
    'kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py',
    'kd/cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py',
    'kd/cwd_logits_pspnet_r18-d8_fcn_r18-w32-d8_1xb4-600it_cityscapes-demo.py',
    'vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py',
    'kd_zero/kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py',
    'kd_zero/kd_zero_pspnet-r18_fcn-r18-w32_1xb4-600it_cityscapes-demo.py',
    'amd/amd_pspnet-r18_pspnet-r18-p40_1xb4-600it_cityscapes-demo.py')]
DIST_CONFIG = cfg('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')


def plan_command(config: str, work_dir: str, iters: int, amp: bool, teacher: str) -> List[str]:
    """``tools/misc/check_config.py --device cuda`` on ``config``: every stage of its run plan, ``iters`` iterations
    per training, distilling from ``teacher``."""
    return ['tools/misc/check_config.py', config, '--device', 'cuda', '--iters', str(iters), '--work-dir', work_dir,
            '--teacher-ckpt', teacher, *(['--amp'] if amp else []),
            '--cfg-options', 'default_hooks.logger.interval=1', 'randomness.seed=0']


def plan_row(config: str) -> tuple:
    """(row name ``folder/task[ plan]``, teacher checkpoint name, the plan's stages in one line) of ``config``."""
    from mmengine.config import Config

    import mmkd_ext  # noqa: F401  (the rooms register their run plans)
    from mmkd_ext.config_check import plan_for, task_of
    loaded = Config.fromfile(config)
    plan, task = plan_for(loaded), task_of(loaded)
    folder = osp.basename(osp.dirname(config))
    name = f'{folder}/{TASK_SHORT[task]}' + ('' if plan.name in ('train', folder) else f' {plan.name}')
    return name, TEACHERS[task][0], plan.describe()


def plan_checks(out: str, iters: int, amp: bool = True) -> List[Check]:
    """Teachers, one config per method x task through every stage of its run plan (with and without AMP), the
    mmcv ops and ``dist_train.sh CONFIG 1``."""
    checks = [Check(f'teacher/{TASK_SHORT[task]}', config_command(config, f'{out}/t_{TASK_SHORT[task]}', iters,
                                                                   False), produces=name)
              for task, (name, config) in TEACHERS.items()]
    checks.append(Check('mmcv ops on CUDA (nms, batched_nms, RoIAlign, focal loss)',
                        ['tools/misc/gpu_check.py', '--ops']))
    for config in PLAN_CONFIGS:
        name, teacher, stages = plan_row(config)
        for use_amp in ((False, True) if amp else (False,)):
            row = name + ('+amp' if use_amp else '')
            work_dir = osp.join(out, re.sub(r'[^\w+]+', '_', row))
            checks.append(Check(row, plan_command(config, work_dir, iters, use_amp, '{' + teacher + '}'),
                                needs=[teacher], stages=stages))
    checks.append(Check('kd_zero/det (RetinaNet / Faster R-CNN pairs)', [], skip=(
        'COCO-only configs, no demo-data config; RoIAlign on CUDA is covered by the mmcv ops row')))
    dist_cfg = DIST_CONFIG
    checks.append(Check('bash tools/dist_train.sh CONFIG 1 (kd/cls)', [
        'bash', 'tools/dist_train.sh', dist_cfg, '1', '--work-dir', f'{out}/dist_kd_cls', '--cfg-options',
        *short_run_options(dist_cfg, iters), 'model.teacher_ckpt={cls_teacher}'],
        needs=['cls_teacher'], launcher='shell'))
    return checks


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
_TIME = re.compile(r'\btime: ([0-9.]+)')
_MEMORY = re.compile(r'\bmemory: ([0-9]+)')


def parse_log(text: str) -> Dict[str, Optional[float]]:
    """Iterations per second and peak memory (MiB) from MMEngine's per-iteration log lines and the probe's result.

    Args:
        text: the check's stdout + stderr (``logger.interval=1``: one ``time: ...`` per training iteration).

    Returns:
        ``its`` (1 / mean time of the iterations after the first two; all of them when there are fewer),
        ``peak_mib`` (the probe's ``max_memory_allocated``, else the largest logged ``memory``), ``seconds``.
    """
    times = [float(t) for line in text.splitlines() if 'train)' in line for t in _TIME.findall(line)]
    steady = times[FIRST_ITERS_DROPPED:] or times
    result: Dict[str, Optional[float]] = dict(its=len(steady) / sum(steady) if steady and sum(steady) > 0 else None,
                                              peak_mib=None, seconds=None)
    memories = [int(m) for m in _MEMORY.findall(text)]
    if memories:
        result['peak_mib'] = float(max(memories))
    for line in text.splitlines():
        if line.startswith(RESULT_TAG):
            probe = json.loads(line[len(RESULT_TAG):])
            result['peak_mib'] = probe.get('peak_mib', result['peak_mib'])
            result['seconds'] = probe.get('seconds')
    return result


def last_error(text: str) -> str:
    """The last line that names an exception (``SomethingError: ...``), else the last non-empty line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r'^[\w.]*(Error|Exception)\b', line)]
    return (errors or lines or ['(no output)'])[-1][:160]


def run_child(argv: Sequence[str]) -> None:
    """Run the python script ``argv[0]`` with ``argv[1:]`` in this process, then print its peak GPU memory."""
    import torch
    sys.argv = list(argv)
    start = time.perf_counter()
    try:
        runpy.run_path(argv[0], run_name='__main__')
    finally:
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None
        print(RESULT_TAG + json.dumps(dict(peak_mib=peak, seconds=time.perf_counter() - start)), flush=True)


def run_check(check: Check, done: Dict[str, str], timeout: float, log_dir: str) -> Row:
    """Run one check in a subprocess; its log goes to ``log_dir``."""
    if check.skip:
        return Row(check.name, 'skipped', note=check.skip)
    missing = [n for n in check.needs if n not in done]
    if missing:
        return Row(check.name, 'skipped', note=f'needs {", ".join(missing)} (its check failed)')
    argv = [a.format(**done) for a in check.argv]
    cmd = argv if check.launcher == 'shell' else [sys.executable, osp.abspath(__file__), '--child', *argv]
    env = {**os.environ, 'PYTHONPATH': ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), 'PYTHON': sys.executable}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        text, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        text, rc = f'{err.stdout or ""}{err.stderr or ""}\nTimeoutError: over {timeout:.0f} s', -1
    seconds = time.perf_counter() - start
    with open(osp.join(log_dir, re.sub(r'[^\w+.-]+', '_', check.name)[:60] + '.log'), 'w') as f:
        f.write(' '.join(cmd) + '\n' + (text if isinstance(text, str) else text.decode(errors='replace')))
    parsed = parse_log(text)
    row = Row(check.name, 'ok' if rc == 0 else 'FAIL', parsed['its'], parsed['peak_mib'], seconds,
              '' if rc == 0 else last_error(text))
    if rc == 0 and check.produces:
        done[check.produces] = produced_path(argv)
    return row


def run_checks(checks: Sequence[Check], budget_s: float, run_one: Callable[[Check], Row],
               clock: Callable[[], float] = time.perf_counter) -> List[Row]:
    """Run the checks in order; skip those that would end after ``budget_s`` (a check takes about the mean so far).

    Args:
        checks: the plan.
        budget_s: seconds for all of them.
        run_one: check -> row (:func:`run_check`).
        clock: seconds, monotonic.

    Returns:
        One row per check.
    """
    rows: List[Row] = []
    start = clock()
    for check in checks:
        ran = [r.seconds for r in rows if r.seconds is not None]
        expected = sum(ran) / len(ran) if ran else 0.0
        if clock() - start + expected > budget_s:
            rows.append(Row(check.name, 'skipped', note=f'time budget of {budget_s:.0f} s spent'))
            continue
        rows.append(run_one(check))
        print(f'[gpu_check] {rows[-1].name}: {rows[-1].status} {rows[-1].note}', flush=True)
    return rows


def produced_path(argv: Sequence[str]) -> str:
    """The checkpoint a training check produced (``last_checkpoint`` of its ``--work-dir``)."""
    work_dir = osp.join(ROOT, argv[list(argv).index('--work-dir') + 1])
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------
def format_table(rows: Sequence[Row], header: str = '') -> str:
    """A Markdown table: check, it/s, peak GPU memory (MiB), wall time (s), status (with the reason)."""
    def num(value: Optional[float], fmt: str) -> str:
        return '-' if value is None else format(value, fmt)
    lines = [header] if header else []
    lines += ['| check | it/s | peak GPU MiB | wall s | status |', '|---|---:|---:|---:|---|']
    for r in rows:
        status = r.status + (f': {r.note}' if r.note else '')
        lines.append(f'| {r.name} | {num(r.its, ".1f")} | {num(r.peak_mib, ".0f")} | {num(r.seconds, ".0f")} | '
                     f'{status.replace("|", "/")} |')
    ok = sum(r.status == 'ok' for r in rows)
    failed = sum(r.status == 'FAIL' for r in rows)
    lines.append(f'\n{ok} ok, {failed} failed, {len(rows) - ok - failed} skipped')
    return '\n'.join(lines)


def gpu_skip_reason(cuda_available: bool, torch_version: str, torch_cuda: Optional[str]) -> str:
    """Why the whole check cannot run here ('' when it can)."""
    if cuda_available:
        return ''
    if torch_cuda is None:
        return (f'torch {torch_version} is a CPU build: install a CUDA build of PyTorch (or run on a GPU machine); '
                'skipped: every check')
    return (f'no CUDA device is visible to torch {torch_version} (CUDA {torch_cuda}): check nvidia-smi and '
            'CUDA_VISIBLE_DEVICES; skipped: every check')


def ops_check() -> None:
    """mmcv's nms / batched_nms / RoIAlign / sigmoid focal loss on CUDA tensors equal the CPU results, forward and
    backward, on the path this machine uses (mmcv's CUDA kernels or the torchvision stand-ins). Without a GPU the
    stand-ins run on CPU tensors instead (``force_fallback``), so the check itself is exercised anywhere."""
    import contextlib

    import torch
    from mmcv.ops import batched_nms, nms, roi_align, sigmoid_focal_loss

    import mmkd_ext  # noqa: F401  (the compatibility layer)
    from mmkd_ext.compat.mmcv_ops import force_fallback, ops_path
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    on_device = contextlib.nullcontext if device == 'cuda' else force_fallback
    print('detection ops path:', ops_path() if device == 'cuda' else 'torchvision stand-ins on CPU (no GPU)')
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(200, 2, generator=g) * 40 + 1], 1)
    scores, idxs = torch.rand(200, generator=g), torch.randint(0, 5, (200,), generator=g)
    with on_device():
        keep = nms(boxes.to(device), scores.to(device), 0.5)[1].cpu()
        batched = batched_nms(boxes.to(device), scores.to(device), idxs.to(device), dict(iou_threshold=0.5))[1].cpu()
    assert torch.equal(keep, nms(boxes, scores, 0.5)[1])
    assert torch.equal(batched, batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5))[1])
    feats = torch.randn(2, 8, 32, 32, generator=g)
    rois = torch.cat([torch.randint(0, 2, (50, 1), generator=g).float(), boxes[:50] / 4], 1)
    for aligned in (True, False):
        outs = []
        for dev, context in (('cpu', contextlib.nullcontext), (device, on_device)):
            x = feats.to(dev).requires_grad_()
            with context():
                y = roi_align(x, rois.to(dev), (7, 7), 0.25, 0, 'avg', aligned)
                y.sum().backward()
            outs.append((y.detach().cpu(), x.grad.cpu()))
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    logits, target = torch.randn(64, 5, generator=g), torch.randint(0, 6, (64,), generator=g)
    with force_fallback():  # mmcv has no CPU focal-loss kernel: the torch formula is the reference
        ref = sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'mean')
    with on_device():
        loss = sigmoid_focal_loss(logits.to(device), target.to(device), 2.0, 0.25, None, 'mean').cpu()
    torch.testing.assert_close(loss, ref)
    print(f'mmcv ops on {device} equal the CPU results')


def probe() -> int:
    """0 when torch sees a GPU; else print why nothing can run and return 3."""
    try:
        import torch
    except ImportError:
        print(f'[gpu_check] {sys.executable} has no PyTorch: install a CUDA build of PyTorch (or set PYTHON); '
              'skipped: every check', file=sys.stderr)
        return 3
    reason = gpu_skip_reason(torch.cuda.is_available(), torch.__version__, torch.version.cuda)
    if reason:
        print(f'[gpu_check] {reason}', file=sys.stderr)
    return 3 if reason else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='GPU check: every method x task config and tool for a few '
                                                 'iterations on the demo data, with and without AMP')
    parser.add_argument('--iters', type=int, default=20, help='iterations of iteration-based configs (default 20)')
    parser.add_argument('--only', help='run only the checks whose name contains this (their prerequisites too)')
    parser.add_argument('--no-amp', action='store_true', help='skip the AMP variants')
    parser.add_argument('--budget-s', type=float, default=600,
                        help='skip the checks that would end after this many seconds (default 600)')
    parser.add_argument('--timeout-s', type=float, default=300,
                        help='limit of one check (default 300: a row runs every stage of its config, AMD the most)')
    parser.add_argument('--out', default='work_dirs/gpu_check', help='work dirs, logs and the table (gpu_check.md)')
    parser.add_argument('--list', action='store_true', help='print the plan and exit')
    parser.add_argument('--allow-cpu', action='store_true', help=argparse.SUPPRESS)  # plumbing runs on CPU
    parser.add_argument('--ops', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--probe', action='store_true', help=argparse.SUPPRESS)  # gpu_check.sh: can anything run?
    return parser.parse_args(argv)


def select(checks: List[Check], only: Optional[str]) -> List[Check]:
    """The checks whose name contains ``only``, plus the checks producing what they need."""
    if not only:
        return checks
    chosen = [c for c in checks if only in c.name]
    needed = {n for c in chosen for n in c.needs}
    while True:  # prerequisites of prerequisites (the FKD store needs the teacher)
        more = {n for c in checks if c.produces in needed for n in c.needs} - needed
        if not more:
            break
        needed |= more
    return [c for c in checks if c in chosen or c.produces in needed]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['--child']:  # internal: gpu_check.py --child SCRIPT ARGS...
        run_child(argv[1:])
        return 0
    args = parse_args(argv)
    if args.probe:
        return probe()
    if args.ops:
        ops_check()
        return 0
    checks = select(plan_checks(args.out, args.iters, amp=not args.no_amp), args.only)
    if args.list:
        for c in checks:
            print(f'{c.name}: {" ".join(c.argv) if c.argv else "skipped: " + c.skip}')
            if c.stages:
                print(f'    stages: {c.stages}')
        return 0
    if not args.allow_cpu and probe():
        return 3
    import torch

    from mmkd_ext.compat.mmcv_ops import ops_path
    from mmkd_ext.demo_data import make_cityscapes_scenes, make_digits, make_shapes_coco
    for make, sub in ((make_digits, 'digits'), (make_shapes_coco, 'shapes'), (make_cityscapes_scenes, 'cityscapes')):
        make(osp.join(ROOT, 'data/demo', sub))
    log_dir = osp.join(ROOT, args.out, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU (--allow-cpu)'
    header = (f'GPU check on {device}, torch {torch.__version__}, {args.iters} iterations / 1 epoch per config; '
              f'detection ops: {ops_path()}\n')
    done: Dict[str, str] = {}
    start = time.perf_counter()
    rows = run_checks(checks, args.budget_s, lambda check: run_check(check, done, args.timeout_s, log_dir))
    table = format_table(rows, header) + f' in {time.perf_counter() - start:.0f} s; logs in {log_dir}'
    print(table)
    with open(osp.join(ROOT, args.out, 'gpu_check.md'), 'w') as f:
        f.write(table + '\n')
    return 0 if all(r.status != 'FAIL' for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
