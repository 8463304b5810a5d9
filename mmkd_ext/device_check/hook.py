"""``FakeCudaCheckHook``: the fake-CUDA device check (:mod:`.fake_cuda`) inside a real training run.

Injected by config (``custom_hooks=[dict(type='FakeCudaCheckHook')]``, the config check's ``extra_hooks``), it checks
the first batch of every train epoch (once for iteration-based loops, where ``runner.epoch`` stays 0), so the state
a run reaches later is checked too (an ACMKD epoch past ``teacher_attention_epochs``, an AMD stage with a pruned
teacher). A device error stops the run naming module and line; every check is recorded in :data:`RECORDS` (this
process) and as one JSON line in ``<work_dir>/fake_cuda_check.jsonl``.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS as ROOT_HOOKS

from .fake_cuda import FakeCudaDeviceError, fake_cuda_train_step, op_location

RECORD_FILE = 'fake_cuda_check.jsonl'
RECORDS: List[dict] = []  # every check of this process, in order


# registered in MMEngine's root registry: injected into configs of any default scope (mmdet, mmseg, mmpretrain,
# mmrazor), each of which falls back to the root
@ROOT_HOOKS.register_module()
class FakeCudaCheckHook(Hook):
    """Before the first train iteration of each epoch, run the batch's loss step on fake CUDA tensors.

    Args:
        replay: where the step stops at a data-dependent op, replay the modules it did not reach.
        other_errors: what an error that is neither a device mismatch nor a known fake-tensor limit does:
            ``'raise'`` (stop the run) or ``'record'`` (record the epoch as ``partial`` naming the error and let the
            real run go on: the config check over every config, where such an error says that fake tensors cannot
            run the step, not that the code is wrong on a GPU; the real CPU step runs right after).
    """

    priority = 'LOWEST'  # after the hooks that set up the iteration's state

    def __init__(self, replay: bool = True, other_errors: str = 'raise') -> None:
        if other_errors not in ('raise', 'record'):
            raise ValueError(f"FakeCudaCheckHook: other_errors must be 'raise' or 'record', not {other_errors!r}")
        self.replay = replay
        self.other_errors = other_errors
        self._checked_epochs: set = set()

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        if runner.epoch in self._checked_epochs:
            return
        self._checked_epochs.add(runner.epoch)
        record = dict(config=_config_name(runner), work_dir=runner.work_dir, epoch=runner.epoch, iter=runner.iter)
        try:
            report = fake_cuda_train_step(runner.model, data_batch, replay=self.replay)
        except FakeCudaDeviceError as exc:
            _save(runner.work_dir, dict(record, status='failed', module=exc.module, location=exc.location,
                                        error=str(exc).splitlines()[0]))
            raise
        except Exception as exc:  # noqa: BLE001  (neither a device error nor a known fake-tensor limit)
            if self.other_errors == 'raise':
                raise
            first_line = (str(exc).splitlines() or [''])[0][:160]
            why = f'fake tensors cannot run the step: {type(exc).__name__}: {first_line} at {op_location(exc)[0]}'
            _save(runner.work_dir, dict(record, status='partial', partial=why))
            runner.logger.warning(f'fake-CUDA device check (epoch {runner.epoch}): partial, {why}')
            return
        _save(runner.work_dir, dict(record, **report.to_dict()))
        runner.logger.info(f'fake-CUDA device check (epoch {runner.epoch}): {report.summary()}')


def _config_name(runner) -> str:
    filename = getattr(runner.cfg, 'filename', None)
    if not filename:
        return runner.experiment_name
    rel = osp.relpath(filename)
    return filename if rel.startswith('..') else rel


def _save(work_dir: str, record: dict) -> None:
    RECORDS.append(record)
    with open(osp.join(work_dir, RECORD_FILE), 'a') as f:
        f.write(json.dumps(record) + '\n')


def read_records(work_dir: str) -> List[dict]:
    """The checks recorded in ``<work_dir>/fake_cuda_check.jsonl`` ([] when there is none)."""
    path = osp.join(work_dir, RECORD_FILE)
    if not osp.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def coverage_line(records: Sequence[dict], total: Optional[int] = None) -> str:
    """``fake-CUDA device check: covered N / M configs (partial: ...)`` over ``records``.

    A config counts as covered when it has at least one check; it is listed as partial (with the reason of its
    first partial check) when any of its checks was partial, and as failed when any failed.

    Args:
        records: check records (:data:`RECORDS`, :func:`read_records`).
        total: how many configs were meant to be checked (default: those with a record).

    Returns:
        The line.
    """
    by_config: Dict[str, List[dict]] = {}
    for r in records:
        by_config.setdefault(r['config'], []).append(r)
    partial = {c: next(r['partial'] for r in rs if r.get('status') == 'partial')
               for c, rs in by_config.items() if any(r.get('status') == 'partial' for r in rs)}
    failed = sorted(c for c, rs in by_config.items() if any(r.get('status') == 'failed' for r in rs))
    line = f'fake-CUDA device check: covered {len(by_config)} / {total if total is not None else len(by_config)} ' \
           'configs'
    notes = ['partial: ' + '; '.join(f'{c}: {why}' for c, why in sorted(partial.items()))] if partial else []
    notes += [f'failed: {failed}'] if failed else []
    return line + (f' ({"; ".join(notes)})' if notes else '')


def coverage_report(records: Sequence[dict], total: Optional[int] = None) -> List[str]:
    """A summary line (configs covered, in full or not), then one line per config with a failed check (module and
    line) or a partial one (the reason of its first partial check, and how many of its checks, stages x epochs,
    ran in full).

    Args:
        records: check records; ``config`` names the config the check belongs to.
        total: how many configs were meant to be checked.

    Returns:
        The lines.
    """
    by_config: Dict[str, List[dict]] = {}
    for r in records:
        by_config.setdefault(r['config'], []).append(r)
    full = sum(all(r.get('status') == 'checked' for r in rs) for rs in by_config.values())
    lines = [f'fake-CUDA device check: covered {len(by_config)} / {total if total is not None else len(by_config)} '
             f'configs: {full} in full, {len(by_config) - full} partially or failed']
    for config, rs in sorted(by_config.items()):
        failed = [r for r in rs if r.get('status') == 'failed']
        partial = [r for r in rs if r.get('status') == 'partial']
        if failed:
            lines.append(f'  FAILED {config}: {failed[0].get("module")} at {failed[0].get("location")}')
        elif partial:
            checked = sum(r.get('status') == 'checked' for r in rs)
            lines.append(f'  partial {config} ({checked}/{len(rs)} checks in full): {partial[0]["partial"]}')
    return lines

