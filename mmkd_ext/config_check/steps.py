"""Steps of the config check: one timed line each, the report, failures naming their step, tools run in-process, and
the table of recorded step times."""
from __future__ import annotations

import glob
import os.path as osp
import resource
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

import torch

from ..demo_data.layout import root_lock

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the checkout (tools/, configs/)


class ConfigCheckFailed(RuntimeError):
    """A step of the config check failed; ``step`` names it."""

    def __init__(self, step: str, message: str):
        super().__init__(f'config check failed at step {step!r}: {message}')
        self.step = step


@dataclass
class StepRecord:
    name: str
    seconds: float
    peak_mb: float
    note: str = ''


@dataclass
class CheckReport:
    config: str
    steps: List[StepRecord] = field(default_factory=list)
    replaced_weights: List[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def _peak_mb(device: str) -> float:
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def step(report: CheckReport, name: str, device: str, log: Callable[[str], None]):
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    record = StepRecord(name, 0.0, 0.0)
    try:
        yield record
    except Exception as exc:  # noqa: BLE001 - every failure names its step
        log(f'[check] {name:<10} FAILED after {time.perf_counter() - start:.1f} s: {type(exc).__name__}: {exc}')
        raise ConfigCheckFailed(name, f'{type(exc).__name__}: {exc}\n{traceback.format_exc()}') from exc
    record.seconds = time.perf_counter() - start
    record.peak_mb = _peak_mb(device)
    report.steps.append(record)
    log(f'[check] {name:<10} ok {record.seconds:6.1f} s  peak {record.peak_mb:7.0f} MB  {record.note}')


def shown(path: str) -> str:
    return osp.relpath(path, ROOT) if path.startswith(ROOT) else path


def metrics_note(metrics: Optional[dict], runner=None) -> str:
    """The first few metrics (MMRazor's distillation val loops return None: read them from the message hub)."""
    if metrics is None and runner is not None:
        scalars = runner.message_hub.log_scalars
        metrics = {k[4:]: v.current() for k, v in scalars.items()
                   if k.startswith('val/') and k not in ('val/time', 'val/data_time')}
    if not metrics:
        raise RuntimeError('validation produced no metric')
    return ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in list(metrics.items())[:4])


def run_tool(script: str, argv: List[str]) -> Any:
    """Run ``tools/<script>``'s ``main(argv)`` in this process (what a user runs, without a new interpreter)."""
    import importlib.util
    path = osp.join(ROOT, script)
    spec = importlib.util.spec_from_file_location(f'_mmkd_tool_{osp.splitext(script)[0].replace("/", "_")}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def checkpoint_files(work_dir: str) -> List[str]:
    """Every ``*.pth`` file under ``work_dir`` (checkpoints, exported students, stored candidates)."""
    return sorted(glob.glob(osp.join(work_dir, '**', '*.pth'), recursive=True))


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint MMEngine's CheckpointHook wrote last (``<work_dir>/last_checkpoint``)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'no checkpoint was written to {work_dir} (no last_checkpoint file)')
    with open(marker) as f:
        return f.read().strip()


# under the current working directory (the tests and CI run from the checkout: work_dirs/ of the checkout)
TIMES_FILE = osp.join('work_dirs', 'config_check_times.json')
# the order in which a check runs its steps (a config runs some of them)
STEP_ORDER = ('labels', 'search', 'pipeline', 'build', 'train', 'val', 'checkpoint', 'resume', 'test', 'export')


def record_times(report: CheckReport, path: str = TIMES_FILE) -> None:
    """Add ``report``'s step times to the JSON table at ``path`` (one entry per config, the latest run wins; checks
    running side by side take turns)."""
    import json
    name = osp.relpath(report.config, ROOT) if report.config.startswith(ROOT) else report.config
    with root_lock(path):
        times = {}
        if osp.isfile(path):
            with open(path) as f:
                times = json.load(f)
        times[name] = {s.name: round(s.seconds, 1) for s in report.steps}  # in the order they ran
        with open(path, 'w') as f:
            json.dump(dict(sorted(times.items())), f, indent=1)


def render_times_table(path: str = TIMES_FILE) -> str:
    """The README table "config -> checked on stand-in data (CPU), seconds" from :func:`record_times`' file."""
    import json
    with open(path) as f:
        times = json.load(f)
    lines = ['| config | steps | seconds |', '|---|---|---|']
    for name, steps in sorted(times.items()):
        ordered = sorted(steps, key=lambda step: STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER))
        lines.append(f"| `{name}` | {' > '.join(ordered)} | {sum(steps.values()):.0f} |")
    lines.append(f'| **{len(times)} configs** | | **{sum(sum(s.values()) for s in times.values()):.0f}** |')
    return '\n'.join(lines)


