"""Train one config with several seeds and report the mean +/- std of its final metric.

The papers report means of 3-5 runs; this trains ``CONFIG`` once per seed with ``tools/train.py``
(``randomness.seed`` set per run, one work dir per seed) and writes ``multi_seed.json`` (per-seed values,
mean, sample std) and the Markdown table ``multi_seed.md`` into the work dir.

A finished seed leaves ``seed<N>/seed_result.json`` (its final metrics and the settings it trained with); a
rerun with the same work dir skips those seeds (``--no-resume`` trains them again) and refuses settings that
differ (config, ``--cfg-options``). ``--metric`` is checked against the config's ``val_evaluator`` (and the
metrics of finished seeds) before anything trains.

    python tools/misc/multi_seed.py CONFIG --seeds 0 1 2 [--work-dir DIR] [--metric accuracy/top1] \
        [--cfg-options k=v ...]
    torchrun --nproc_per_node N tools/misc/multi_seed.py CONFIG --seeds 0 1 2 --launcher pytorch

The final metric is the one of the last validation (MMEngine validates after the last epoch/iteration);
``--metric`` defaults to the student's top-1 (``accuracy/top1``, ``student.accuracy/top1``, ...).
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import re
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import get_rank  # noqa: E402
from mmengine.registry import METRICS  # noqa: E402

from mmkd_ext.launch import add_launcher_arg  # noqa: E402
from tools.train import main as train_main  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a config with several seeds; mean +/- std of the final metric')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='one run per seed')
    parser.add_argument('--work-dir', help='root of the per-seed work dirs (default: work_dirs/<config>_seeds)')
    parser.add_argument('--metric', help='validation metric to report (default: the student top-1)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides for every run, key=value (passed to tools/train.py as they are)')
    parser.add_argument('--no-resume', action='store_true',
                        help='train every seed again, even those a previous call finished')
    add_launcher_arg(parser, '; every seed trains on all the ranks, one after the other')
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


RESULT_FILE = 'seed_result.json'  # in each seed's work dir, once that seed finished


def _metric_cfgs(cfg: Config) -> List[dict]:
    """The metric configs of ``cfg.val_evaluator`` (a metric, a list, or ``dict(metrics=...)``)."""
    evaluator = cfg.get('val_evaluator')
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    return [dict(m) for m in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]) if m]


def metric_patterns(cfg: Config) -> List[str]:
    """Regular expressions of the metric keys the config's ``val_evaluator`` reports (without building it).

    ``Accuracy``-like metrics give ``<prefix>/top<k>`` for their ``topk``; other metrics ``<prefix>/<any name>``,
    or any name for a metric without prefix (mmseg's ``mIoU``). A key may carry a network or candidate qualifier
    in front (``student.``, ACMKD's ``<student>.`` and ``<student>.gap/``, AMD's ``scale_0.3000/``).

    Args:
        cfg: the training config.

    Returns:
        One pattern per metric (empty when the config validates nothing).
    """
    patterns = []
    for metric in _metric_cfgs(cfg):
        cls = metric['type']
        if isinstance(cls, str):  # scoped lookup: it imports the package's metrics (mmpretrain.Accuracy)
            scope = metric.get('_scope_') or cfg.get('default_scope')
            cls = METRICS.get(f'{scope}.{cls}' if scope and '.' not in cls else cls)
        prefix = metric.get('prefix') or getattr(cls, 'default_prefix', None)
        if not prefix:
            return patterns + ['.*']
        if 'topk' in metric or prefix == 'accuracy':
            topk = metric.get('topk', (1, ))
            names = '|'.join(f'top{k}' for k in ((topk, ) if isinstance(topk, int) else topk))
        else:
            names = '[^/]+'
        patterns.append(rf'(.*[./])?{re.escape(prefix)}/({names})')
    return patterns


def check_metric(cfg: Config, metric: Optional[str], finished: Dict[int, dict]) -> None:
    """Refuse a ``--metric`` the runs cannot report, before the first seed trains.

    Args:
        cfg: the training config.
        metric: ``--metric`` (None: the student's top-1, found after the first run).
        finished: seed -> saved result of the seeds already trained (their metrics are exact).
    """
    patterns = metric_patterns(cfg)
    if not patterns:
        raise RuntimeError(f'{cfg.filename} validates nothing: give it a val_dataloader, val_cfg and val_evaluator '
                           '(multi_seed.py reports the final validation metric)')
    if metric is None:
        return
    for result in finished.values():
        metric_key(result['metrics'], metric)
    if not any(re.fullmatch(p, metric) for p in patterns):
        raise KeyError(f'--metric {metric!r} is not a key the val_evaluator of {cfg.filename} reports (keys match '
                       f'{patterns}, e.g. accuracy/top1 or student.accuracy/top1); nothing was trained')


def load_cfg(args: argparse.Namespace) -> Config:
    """The config every seed trains: ``CONFIG`` with ``--cfg-options`` merged (as tools/train.py does)."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--options', *args.cfg_options]).options)
    return cfg


def run_settings(args: argparse.Namespace, cfg: Config) -> dict:
    """What decides a seed's result besides the seed: the merged config and ``--cfg-options``."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return dict(config=osp.abspath(args.config), config_sha256=hashlib.sha256(text.encode()).hexdigest(),
                cfg_options=list(args.cfg_options))


def finished_seeds(root: str, seeds: Sequence[int], settings: dict) -> Dict[int, dict]:
    """The saved results of the seeds a previous call finished in ``root``, checked against ``settings``.

    Raises:
        ValueError: a finished seed trained with other settings (names the file and the keys).
    """
    out = {}
    for seed in seeds:
        path = osp.join(root, f'seed{seed}', RESULT_FILE)
        if not osp.exists(path):
            continue
        with open(path) as f:
            saved = json.load(f)
        changed = sorted(k for k in settings if saved['settings'].get(k) != settings[k])
        if changed:
            raise ValueError(f'{path} was trained with other settings {changed} (saved '
                             f'{[saved["settings"].get(k) for k in changed]}, now {[settings[k] for k in changed]}); '
                             'use another --work-dir, or --no-resume to train every seed again')
        out[seed] = saved
    return out


def train_seed(args: argparse.Namespace, seed: int, root: str, settings: dict) -> Dict[str, float]:
    """Train one seed; rank 0 saves its final metrics in ``seed<N>/seed_result.json``."""
    work_dir = osp.join(root, f'seed{seed}')
    metrics = final_metrics(train_main(seed_argv(args, seed, work_dir)))
    if get_rank() == 0:
        os.makedirs(work_dir, exist_ok=True)
        with open(osp.join(work_dir, RESULT_FILE), 'w') as f:
            json.dump(dict(seed=seed, settings=settings, metrics=metrics), f, indent=2)
    return metrics


def write_report(root: str, out: dict, markdown: str) -> None:
    """``multi_seed.json`` and ``multi_seed.md`` in ``root`` (rank 0), and the table on stdout."""
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'multi_seed.json'), 'w') as f:
        json.dump(out, f, indent=2)
    with open(osp.join(root, 'multi_seed.md'), 'w') as f:
        f.write(f"{out['config']}\n\n{markdown}\n")
    print(markdown)
    print(f"written {osp.join(root, 'multi_seed.json')} and {osp.join(root, 'multi_seed.md')}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    name = osp.splitext(osp.basename(args.config))[0]
    root = args.work_dir or osp.join('work_dirs', f'{name}_seeds')
    cfg = load_cfg(args)
    settings = run_settings(args, cfg)
    finished = {} if args.no_resume else finished_seeds(root, args.seeds, settings)
    check_metric(cfg, args.metric, finished)
    values, metric = [], args.metric
    for seed in args.seeds:
        if seed in finished:
            print(f'seed {seed}: finished in an earlier call ({osp.join(root, f"seed{seed}", RESULT_FILE)}), skipped')
        metrics = finished[seed]['metrics'] if seed in finished else train_seed(args, seed, root, settings)
        metric = metric_key(metrics, metric)
        values.append(metrics[metric])
    summary = summarise(values)
    out = dict(config=args.config, metric=metric, seeds=dict(zip(map(str, args.seeds), values)), **summary)
    if get_rank() == 0:
        write_report(root, out, table(metric, args.seeds, values, summary))
    return out


if __name__ == '__main__':
    main()
