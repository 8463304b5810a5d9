"""AMD cost claims, measured side by side (issue 7 "Performance").

1. Wall time of the whole AMD chain (importance -> joint -> selection -> final -> export) relative to one
   single-step KD run to the same student, and to manual multi-step distillation (MMD: every candidate is
   distilled as a TA and a student is distilled from each; supp. Table 2 reports 2.2x and 20x).
2. Latency, parameters and FLOPs (MMEngine count) of the exported pruned student vs the masked model and the
   teacher (resnet20 at 30% and ViT-Base at 15%).

    python benchmarks/amd_pipeline.py [--epochs 2] [--skip-chain] [--skip-export] [--large]
        [--m 3 9 15] [--modes all sandwich single] [--num-random 2] [--seeds 0 1 2]
    python benchmarks/amd_pipeline.py --compare-candidate-modes [--candidates 3] [--candidate-mode masked sliced]

3. (issue 26, default chain part) for every m of ``--m`` and every candidate sampling mode of ``--modes``
   (``AMDDistill.candidates_per_step``): the chain's cost / one KD run, the joint stage's cost / one KD run and
   against the same mode at the smallest m, each next to its FLOPs bound (teacher forward 1 + forward/backward
   3 x scale per trained candidate and step, against 1 + 3 x 0.3 for KD), the selected TA and the student's top-1.
   ``--compare-candidate-modes`` runs the older masked-vs-sliced comparison (plus MMD) at ``--candidates``.

``--large`` runs 12 epochs per run instead of 2, so the per-epoch costs outweigh the fixed cost of building
each Runner (about 5 s: configs, model, checkpoint, FLOPs count for the pruner). Every figure is printed with
the 1-minute load average (``os.getloadavg``), since the machine may be shared.

Digits demo data; the teacher work_dirs/digits_teacher/epoch_30.pth, else work_dirs/demo/teacher/epoch_30.pth (the
`make demo` teacher), else a random-weight resnet20.
The paper's figures are GPU hours on 16 A100s for 100 epochs; here every run is a few CPU epochs, so the
fixed cost of building a Runner weighs more and the ratios are the per-run ratios of this machine.
"""
from __future__ import annotations

import argparse
import copy
import os
import os.path as osp
import shutil
import statistics
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
os.chdir(ROOT)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.amd.flops import candidate_scales, total_flops  # noqa: E402
from mmkd_ext.amd.pipeline import AMDPipeline  # noqa: E402
from mmkd_ext.amd.pruner import AMDPruner  # noqa: E402
from mmkd_ext.registry import MODELS  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'amd', 'amd_resnet20_resnet20-p30_1xb32-6e_digits.py')
# the teacher of the digits configs' README command, else the one `make demo` trained (a random resnet20 if neither)
TEACHERS = [osp.join(ROOT, 'work_dirs', 'digits_teacher', 'epoch_30.pth'),
            osp.join(ROOT, 'work_dirs', 'demo', 'teacher', 'epoch_30.pth')]
TEACHER = next((path for path in TEACHERS if osp.exists(path)), TEACHERS[0])


def base_config(work: str, epochs: int, m: int, teacher: str = TEACHER) -> Config:
    cfg = Config.fromfile(CONFIG)
    if not osp.exists(teacher):
        model = MODELS.build(cfg.model.teacher)
        path = osp.join(work, 'random_teacher.pth')
        torch.save({'state_dict': model.state_dict()}, path)
        cfg.model.teacher_ckpt = path
    else:
        cfg.model.teacher_ckpt = teacher
    iters = epochs * 10
    cfg.amd.num_candidates = m
    cfg.amd.joint_train_cfg = cfg.amd.final_train_cfg = dict(max_epochs=epochs, val_interval=epochs)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs)
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=iters, by_epoch=False, eta_min=0.0)]
    cfg.log_level = 'WARNING'
    return cfg


LARGE_EPOCHS = 12


def load() -> str:
    """The 1/5/15-minute load averages, printed next to every timing."""
    return 'load %.2f %.2f %.2f' % os.getloadavg()


def kd_run(cfg: Config, work: str, student_cfg: dict, teacher_ckpt: str, teacher_scale: float = 1.0,
           importance_file: str = None) -> float:
    """One single-step distillation run (AMDDistill without candidates: same loss, one student); wall seconds."""
    cfg = copy.deepcopy(cfg)
    cfg.pop('amd')
    updates = dict(architecture=student_cfg, scales=None, student_ckpt=None, teacher_ckpt=teacher_ckpt,
                   teacher_scale=teacher_scale, importance_file=importance_file)
    for key, value in updates.items():
        cfg.model[key] = value
    cfg.work_dir = work
    cfg.experiment_name = f'kd_{time.time_ns()}'
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    return time.perf_counter() - start


def amd_chain(cfg: Config, work: str, mode: str) -> tuple:
    """The whole AMD chain with ``pruner.candidate_mode=mode``; (wall seconds, stage state, load after)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.pruner.candidate_mode = mode
    start = time.perf_counter()
    state = AMDPipeline(cfg, osp.join(work, f'amd_{mode}'), log=lambda *_: None).run()
    return time.perf_counter() - start, state, load()


def chain_benchmark(epochs: int, m: int, modes=('masked', )) -> None:
    """AMD chain(s) (one per candidate mode), single-step KD and MMD, in one run; prints the ratios."""
    work = tempfile.mkdtemp(prefix='amd_bench_')
    try:
        cfg = base_config(work, epochs, m)
        load_before = load()
        chains = {mode: amd_chain(cfg, work, mode) for mode in modes}
        state = chains[modes[0]][1]
        student_cfg = Config.fromfile(state['export']['student']['config']).model.to_dict()
        kd_s = kd_run(cfg, osp.join(work, 'kd'), student_cfg, cfg.model.teacher_ckpt)
        # MMD: one TA per candidate distilled from the teacher, then a student from each TA. Each TA is the
        # exported candidate architecture; we time one TA -> student chain and count m of them.
        ta_cfg = Config.fromfile(state['export']['ta']['config']).model.to_dict()
        one_ta = kd_run(cfg, osp.join(work, 'mmd_ta'), ta_cfg, cfg.model.teacher_ckpt)
        one_student = kd_run(cfg, osp.join(work, 'mmd_student'), student_cfg, cfg.model.teacher_ckpt)
        mmd_s = m * (one_ta + one_student)
        threads = torch.get_num_threads()
        print(f'== wall time, digits, {epochs} epochs per run, m={m} candidates (CPU, {threads} thread); '
              f'{load_before} before, {load()} after')
        print(f'single-step KD         {kd_s:7.1f} s')
        print(f'manual multi-step MMD  {mmd_s:7.1f} s  (m x [TA {one_ta:.1f}s + student {one_student:.1f}s])'
              f'  -> MMD / KD = {mmd_s / kd_s:.2f}x (paper 20x)')
        for mode, (amd_s, st, load_amd) in chains.items():
            stages = ', '.join(f'{k} {v["wall_s"]:.1f}s' for k, v in st.items())
            print(f'AMD chain ({mode:6s})    {amd_s:7.1f} s  -> AMD / KD = {amd_s / kd_s:.2f}x (paper 2.2x), '
                  f'MMD / AMD = {mmd_s / amd_s:.2f}x (paper 9x)  ({stages}; {load_amd} after)')
            print(f'   selected TA scale {st["select_1"]["selected_scale"]:.2f}; '
                  f'student top-1 {st["final"]["student_accuracy"]:.1f}%')
    finally:
        shutil.rmtree(work, ignore_errors=True)


def expected_step_scales(scales, mode: str, k: int) -> float:
    """Expected sum of the trained candidates' scales per step (the subset rule of mmkd_ext/amd/sampling.py)."""
    middle = scales[1:-1]
    if mode == 'all' or (mode == 'sandwich' and k >= len(middle)):
        return sum(scales)
    if mode == 'single':
        return sum(scales) / len(scales)
    return scales[0] + scales[-1] + k * sum(middle) / len(middle)


def flops_bounds(m: int, mode: str, k: int, target: float, st: dict) -> tuple:
    """FLOPs of a joint step and of the whole chain per KD step (forward 1, backward 2 units; KD: 1 + 3 target).

    The final stage (trained only when a TA above the target was selected) adds a step of the TA as teacher and
    the candidates <= the TA, under the same sampling rule.
    """
    scales = candidate_scales(target, m)
    kd = 1 + 3 * target
    joint = (1 + 3 * expected_step_scales(scales, mode, k)) / kd
    final = 0.0
    if st['final'].get('trained'):
        ta = st['select_1']['selected_scale']
        below = [s for s in scales if s <= ta + 1e-9]
        final = (ta + 3 * expected_step_scales(below, mode, k)) / kd
    return joint, joint + final


def sampling_chain(cfg: Config, work: str, m: int, mode: str, k: int, candidate_mode: str,
                   recalibration: int = None, seed: int = 0) -> tuple:
    """One AMD chain with ``m`` candidates and ``candidates_per_step=mode``; (wall s, state, load after).

    ``recalibration``: ``val_cfg.bn_recalibration_batches`` (None: the loop's default, off for ``'all'``).
    ``seed``: the runners' ``randomness.seed`` and the subset rule's seed.
    """
    cfg = copy.deepcopy(cfg)
    cfg.val_cfg.bn_recalibration_batches = recalibration
    cfg.amd.num_candidates = m
    cfg.model.pruner.candidate_mode = candidate_mode
    cfg.model.candidates_per_step = dict(mode=mode, num_random=k, seed=seed)
    cfg.randomness = dict(seed=seed, deterministic=False)
    start = time.perf_counter()
    state = AMDPipeline(cfg, osp.join(work, f'amd_m{m}_{mode}_s{seed}'), log=lambda *_: None).run()
    return time.perf_counter() - start, state, load()


def seed_kd_run(cfg: Config, work: str, student_cfg: dict, seed: int, name: str) -> float:
    """One single-step KD run (wall s) under ``seed``, the reference of that seed's ratios."""
    cfg = copy.deepcopy(cfg)
    cfg.randomness = dict(seed=seed, deterministic=False)
    return kd_run(cfg, osp.join(work, name), student_cfg, cfg.model.teacher_ckpt)


def sampling_benchmark(epochs: int, ms, modes, k: int, candidate_mode: str = 'sliced', teacher: str = TEACHER,
                       recalibration: int = None, seeds=(0, )) -> None:
    """Chain and joint-stage cost per (m, sampling mode) against one KD run and the FLOPs bounds (issue 26).

    Every seed runs the whole grid between two KD runs of its own (the machine's load drifts); a seed's ratios
    use the mean of its two KD runs. The summary gives the mean ratio over seeds, the TA per seed and the
    student's top-1 (mean and sample standard deviation) per (m, mode).
    """
    work = tempfile.mkdtemp(prefix='amd_bench_')
    try:
        cfg = base_config(work, epochs, ms[0], teacher)
        target = cfg.amd.student_scale
        print(f'== candidate sampling (issue 26): digits, {epochs} epochs per run, {candidate_mode} candidates, '
              f'k={k}, BN recalibration {recalibration}, seeds {list(seeds)}, 1 torch thread, teacher '
              f'{cfg.model.teacher_ckpt}; {load()} before', flush=True)
        runs, student_cfg = {}, None
        for seed in seeds:
            kd, chains = [], {}
            for m in ms:
                for mode in modes:
                    chains[m, mode] = sampling_chain(cfg, work, m, mode, k, candidate_mode, recalibration, seed)
                    wall, st, ld = chains[m, mode]
                    print(f'   seed {seed} m={m:2d} {mode:8s} chain {wall:6.1f} s (joint {st["joint_1"]["wall_s"]:.1f} '
                          f's, final {st["final"]["wall_s"]:.1f} s), TA {st["select_1"]["selected_scale"]:.2f}, '
                          f'student top-1 {st["final"]["student_accuracy"]:.1f}; {ld}', flush=True)
                    if student_cfg is None:
                        student_cfg = Config.fromfile(st['export']['student']['config']).model.to_dict()
                    if not kd:
                        kd.append(seed_kd_run(cfg, work, student_cfg, seed, f'kd_s{seed}_0'))
            kd.append(seed_kd_run(cfg, work, student_cfg, seed, f'kd_s{seed}_1'))
            kd_s = sum(kd) / len(kd)
            print(f'   seed {seed} single-step KD: {kd[0]:.1f} s after its first chain, {kd[1]:.1f} s after its '
                  f'last; mean {kd_s:.1f} s; {load()}', flush=True)
            for key, (wall, st, _) in chains.items():
                runs.setdefault(key, []).append((wall / kd_s, st['joint_1']['wall_s'] / kd_s, st))
        print_sampling_table(runs, ms, k, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_sampling_table(runs: dict, ms, k: int, target: float) -> None:
    """The Markdown table of :func:`sampling_benchmark`: ratios (mean over seeds) next to their FLOPs bounds."""
    def mean(values):
        return sum(values) / len(values)

    print(f'| m | mode | chain / KD (bound) | joint / KD (bound) | joint / joint at m={ms[0]} (bound) | TA per seed | '
          'student top-1 (mean +- sd) |')
    print('|---|---|---|---|---|---|---|')
    for (m, mode), seeds in runs.items():
        bounds = [flops_bounds(m, mode, k, target, st) for _, _, st in seeds]
        base = runs[ms[0], mode]
        base_bound = mean([flops_bounds(ms[0], mode, k, target, st)[0] for _, _, st in base])
        joint = mean([j for _, j, _ in seeds])
        top1 = [st['final']['student_accuracy'] for _, _, st in seeds]
        spread = statistics.stdev(top1) if len(top1) > 1 else 0.0
        tas = ' / '.join(f'{st["select_1"]["selected_scale"]:.2f}' for _, _, st in seeds)
        print(f'| {m} | {mode} | {mean([c for c, _, _ in seeds]):.2f}x ({mean([b[1] for b in bounds]):.2f}x) | '
              f'{joint:.2f}x ({mean([b[0] for b in bounds]):.2f}x) | {joint / mean([j for _, j, _ in base]):.2f}x '
              f'({mean([b[0] for b in bounds]) / base_bound:.2f}x) | {tas} | {mean(top1):.1f} +- {spread:.1f} |',
              flush=True)


def latency(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def export_benchmark(name: str, model_cfg: dict, shape: tuple, scale: float, batch: int, repeats: int,
                     random_scores: bool) -> None:
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    x = torch.randn(batch, *shape)
    teacher_ms = latency(model, x, repeats)
    teacher_flops = total_flops(model, (x[:1], ))
    teacher_params = sum(p.numel() for p in model.parameters())
    pruner = AMDPruner(model, shape, candidate_mode='masked')  # the row labelled masked
    pruner.set_scores({u.name: torch.rand(u.size) for u in pruner.units} if random_scores
                      else pruner.l1_scores(model))
    pruner.apply(scale)
    masked_ms = latency(model, x, repeats)
    pruner.densify(model, scale)
    exported_ms = latency(model, x, repeats)
    flops = total_flops(model, (x[:1], ))
    params = sum(p.numel() for p in model.parameters())
    print(f'== {name}: batch {batch}, median of {repeats} CPU forwards ({load()})')
    print(f'teacher   {teacher_ms:8.1f} ms  {teacher_params / 1e6:7.3f} M params  {teacher_flops / 1e9:7.3f} GFLOPs')
    print(f'masked    {masked_ms:8.1f} ms  {teacher_params / 1e6:7.3f} M params  {teacher_flops / 1e9:7.3f} GFLOPs '
          f'(computed: masks zero structures, nothing is skipped)')
    print(f'exported  {exported_ms:8.1f} ms  {params / 1e6:7.3f} M params  {flops / 1e9:7.3f} GFLOPs  '
          f'-> scale {flops / teacher_flops:.3f}, speed-up {masked_ms / exported_ms:.2f}x vs masked')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--candidates', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--skip-chain', action='store_true')
    parser.add_argument('--skip-export', action='store_true', help='skip the latency/params/FLOPs part')
    parser.add_argument('--candidate-mode', nargs='+', default=['masked', 'sliced'], choices=['masked', 'sliced'],
                        help='AMD chains to time side by side (pruner.candidate_mode, mmkd_ext/amd/slicing.py)')
    parser.add_argument('--large', action='store_true',
                        help=f'{LARGE_EPOCHS} epochs per run, so per-epoch costs dominate the Runner start-up')
    parser.add_argument('--teacher', default=TEACHER, help='teacher checkpoint (a random resnet20 if it is missing)')
    parser.add_argument('--m', type=int, nargs='+', default=[3, 9, 15], help='candidate counts of the sampling grid')
    parser.add_argument('--modes', nargs='+', default=['all', 'sandwich', 'single'],
                        choices=['all', 'sandwich', 'single'], help='candidates_per_step modes of the sampling grid')
    parser.add_argument('--num-random', type=int, default=2, help="random middle candidates of 'sandwich'")
    parser.add_argument('--bn-recalibration', type=int, default=None,
                        help="val_cfg.bn_recalibration_batches of every chain (default: 8 when sampled, 0 for 'all')")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds of the sampling grid: each runs the whole grid between two KD runs of its own')
    parser.add_argument('--compare-candidate-modes', action='store_true',
                        help='the masked-vs-sliced chain comparison (with MMD) at --candidates instead of the grid')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_export:
        export_all()
    epochs = LARGE_EPOCHS if args.large else args.epochs
    if args.skip_chain:
        return
    if args.compare_candidate_modes:
        chain_benchmark(epochs, args.candidates, tuple(args.candidate_mode))
    else:
        sampling_benchmark(epochs, args.m, args.modes, args.num_random, args.candidate_mode[-1],
                           args.teacher, args.bn_recalibration, args.seeds)


def export_all() -> None:
    """Latency, parameters and FLOPs of teacher, masked and exported models (resnet20 and ViT-Base)."""
    cfg = Config.fromfile(CONFIG)
    export_benchmark('resnet20 -> 30% (digits classifier)', cfg.model.teacher.to_dict(), (3, 32, 32), 0.3, 32, 20,
                     random_scores=False)
    vit = Config.fromfile(osp.join(ROOT, 'configs', 'amd', 'amd_vit-base_vit-base-p15_16xb8-100e_cifar100.py'))
    export_benchmark('ViT-Base -> 15% (224 px)', vit.model.teacher.to_dict(), (3, 224, 224), 0.15, 1, 5,
                     random_scores=True)


if __name__ == '__main__':
    main()
