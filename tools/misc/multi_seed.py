"""Train one config with several seeds and report the mean +/- std of its final metric.

The papers report means of 3-5 runs; this trains ``CONFIG`` once per seed with ``tools/train.py``
(``randomness.seed`` set per run, one work dir per seed) and writes ``multi_seed.json`` (per-seed values,
mean, sample std) and a Markdown table.

    python tools/misc/multi_seed.py CONFIG --seeds 0 1 2 [--work-dir DIR] [--metric accuracy/top1] \
        [--cfg-options k=v ...]
    torchrun --nproc_per_node N tools/misc/multi_seed.py CONFIG --seeds 0 1 2 --launcher pytorch

The final metric is the one of the last validation (MMEngine validates after the last epoch/iteration);
``--metric`` defaults to the student's top-1 (``accuracy/top1``, ``student.accuracy/top1``, ...).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmengine.dist import get_rank  # noqa: E402

from tools.train import main as train_main  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a config with several seeds; mean +/- std of the final metric')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='one run per seed')
    parser.add_argument('--work-dir', help='root of the per-seed work dirs (default: work_dirs/<config>_seeds)')
    parser.add_argument('--metric', help='validation metric to report (default: the student top-1)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides for every run, key=value (passed to tools/train.py as they are)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (pytorch: run this script under torchrun)')
    return parser.parse_args(argv)


def final_metrics(runner) -> Dict[str, float]:
    """The metrics of the runner's last validation (as logged by MMEngine's RuntimeInfoHook)."""
    metrics = {key[len('val/'):]: float(buf.current()) for key, buf in runner.message_hub.log_scalars.items()
               if key.startswith('val/')}
    if not metrics:
        raise RuntimeError('the run validated nothing: give the config a val_dataloader/val_cfg (MMEngine validates '
                           'after the last epoch or iteration)')
    return metrics


def metric_key(metrics: Dict[str, float], metric: Optional[str]) -> str:
    """``metric`` if the run reported it, else the student's top-1 key; a clear error otherwise."""
    if metric is not None:
        if metric not in metrics:
            raise KeyError(f'--metric {metric!r} is not among the final validation metrics {sorted(metrics)}')
        return metric
    for key in ('accuracy/top1', 'student.accuracy/top1'):
        if key in metrics:
            return key
    raise KeyError(f'no student top-1 among the final validation metrics {sorted(metrics)}; choose one with --metric')


def summarise(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single run)."""
    return dict(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                n=len(values))


def table(metric: str, seeds: Sequence[int], values: Sequence[float], summary: Dict[str, float]) -> str:
    """A Markdown table: one row per seed, then mean +/- std."""
    rows = [f'| seed | {metric} |', '|---|---|']
    rows += [f'| {s} | {v:.2f} |' for s, v in zip(seeds, values)]
    rows.append(f"| mean +/- std (n={summary['n']}) | {summary['mean']:.2f} +/- {summary['std']:.2f} |")
    return '\n'.join(rows)


def seed_argv(args: argparse.Namespace, seed: int, work_dir: str) -> List[str]:
    """The tools/train.py command line of one seed."""
    name = osp.splitext(osp.basename(args.config))[0]
    options = [*args.cfg_options, f'randomness.seed={seed}', f'experiment_name={name}_seed{seed}_{time.time_ns()}']
    return [args.config, '--work-dir', work_dir, '--launcher', args.launcher, '--cfg-options', *options]


def main(argv=None) -> dict:
    args = parse_args(argv)
    name = osp.splitext(osp.basename(args.config))[0]
    root = args.work_dir or osp.join('work_dirs', f'{name}_seeds')
    values, metric = [], args.metric
    for seed in args.seeds:
        runner = train_main(seed_argv(args, seed, osp.join(root, f'seed{seed}')))
        metrics = final_metrics(runner)
        metric = metric_key(metrics, metric)
        values.append(metrics[metric])
    summary = summarise(values)
    out = dict(config=args.config, metric=metric, seeds=dict(zip(map(str, args.seeds), values)), **summary)
    if get_rank() == 0:
        os.makedirs(root, exist_ok=True)
        with open(osp.join(root, 'multi_seed.json'), 'w') as f:
            json.dump(out, f, indent=2)
        print(table(metric, args.seeds, values, summary))
        print(f"written {osp.join(root, 'multi_seed.json')}")
    return out


if __name__ == '__main__':
    main()
