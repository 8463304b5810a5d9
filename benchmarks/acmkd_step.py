"""ACMKD step cost: one step with 3 students vs 3 separate single-student KD steps of the same pairs.

ACMKD runs the teacher once per batch for all students; three separate KD runs (MMRazor's
``SingleTeacherDistill`` + ``KLDivergence`` on the head output) run it three times. The claim
(issue 8): ACMKD's step time is below the sum of the three KD steps. Memory: ACMKD keeps the three
students' autograd graphs alive until its single backward, so its peak activation memory is about
the sum of the three, not the largest one.

    python benchmarks/acmkd_step.py                       # digits demo models, CPU, batch 32
    python benchmarks/acmkd_step.py --preset imagenet --device cuda --batch-size 32

Memory is measured as the bytes of tensors saved for backward (``saved_tensors_hooks``, storages
counted once) at the backward pass, on any device; on CUDA also ``max_memory_allocated``.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.registry import MODELS  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRESETS = {
    'digits': osp.join(ROOT, 'configs/acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py'),
    'imagenet': osp.join(ROOT, 'configs/acmkd/acmkd_swin-t_3students_4xb32-300e_in1k.py'),
    'cifar100': osp.join(ROOT, 'configs/acmkd/acmkd_swin-t_3students_1xb64-200e_cifar100.py'),
}


class SavedBytes:
    """Counts the bytes of distinct storages saved for backward inside the context."""

    def __init__(self) -> None:
        self.storages: Dict[int, int] = {}

    def __enter__(self):
        def pack(t: torch.Tensor):
            s = t.untyped_storage()
            self.storages[s.data_ptr()] = s.nbytes()
            return t
        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._ctx.__exit__(*exc)

    @property
    def mib(self) -> float:
        return sum(self.storages.values()) / 2**20


def make_batch(n: int, size: int, num_classes: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(n)])


def kd_model(cfg: Config, student: str) -> torch.nn.Module:
    """MMRazor's vanilla logit KD (SingleTeacherDistill, KLDivergence tau=1) for one teacher-student pair."""
    return MODELS.build(dict(
        type='SingleTeacherDistill', architecture=copy.deepcopy(cfg.model.students[student].model),
        teacher=copy.deepcopy(cfg.model.teacher), teacher_ckpt=None,
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(logits=dict(type='ModuleOutputs', source='head')),
            teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head')),
            distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1)),
            loss_forward_mappings=dict(loss_kl=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                    preds_T=dict(from_student=False, recorder='logits'))))))


def timed(step: Callable[[], None], iters: int, device: str) -> float:
    """Median seconds of ``step`` over ``iters`` runs, after two warm-up runs."""
    for _ in range(2):
        step()
    times = []
    for _ in range(iters):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model, optim, batch: dict, iters: int, device: str) -> Dict[str, float]:
    model.to(device).train()
    seconds = timed(lambda: model.train_step(batch, optim), iters, device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    with SavedBytes() as saved:
        model.train_step(batch, optim)
    out = dict(step_s=seconds, saved_mib=saved.mib)
    if device == 'cuda':
        out['cuda_peak_mib'] = torch.cuda.max_memory_allocated() / 2**20
    model.cpu()
    return out


def main(argv: List[str] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='digits')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads (1: stable on shared cores)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(PRESETS[args.preset])
    cfg.model.teacher_ckpt = None
    size = cfg.model.input_size[0]
    model = MODELS.build(cfg.model)
    model.ssd_start_epoch, model.weakest = 1, model.student_names[-1]
    model.set_epoch(1)  # after the teacher-attention pre-training: L_logit + L_att + L_ssd all on (Eq. 9)
    batch = make_batch(args.batch_size, size, model.num_classes)
    results = {'ACMKD (3 students)': measure(model, build_optim_wrapper(model, cfg.optim_wrapper), batch,
                                             args.iters, args.device)}
    logit_only = MODELS.build(dict(cfg.model, alpha=0.0, beta=0.0))  # shared teacher forward, Eqs. 1-3 only
    results['ACMKD L_logit only'] = measure(logit_only, build_optim_wrapper(logit_only, cfg.optim_wrapper), batch,
                                            args.iters, args.device)
    template = cfg.optim_wrapper.optim_wrapper
    for name in model.student_names:
        kd = kd_model(cfg, name)
        wrapper = copy.deepcopy(template)
        for key, value in (cfg.optim_wrapper.get('overrides', {}).get(name) or {}).items():
            wrapper[key] = {k: v for k, v in value.items() if k != '_delete_'} if isinstance(value, dict) else value
        results[f'KD {name}'] = measure(kd, build_optim_wrapper(kd, wrapper), batch, args.iters, args.device)
    kd_rows = [v for k, v in results.items() if k.startswith('KD ')]
    total = {k: sum(r[k] for r in kd_rows) for k in kd_rows[0]}
    peak = {k: max(r[k] for r in kd_rows) for k in kd_rows[0]}
    acmkd = results['ACMKD (3 students)']
    print(f'preset {args.preset}, batch {args.batch_size}, device {args.device}, threads {args.threads}, '
          f'median of {args.iters} steps')
    print(f'{"":24s} {"step s":>8s} {"saved MiB":>10s}' + (f' {"cuda MiB":>9s}' if args.device == 'cuda' else ''))
    for name, r in [*results.items(), ('3 KD steps (sum/max)', {**total, 'saved_mib': peak['saved_mib'],
                                                                 **({'cuda_peak_mib': peak['cuda_peak_mib']}
                                                                    if 'cuda_peak_mib' in peak else {})})]:
        extra = f' {r["cuda_peak_mib"]:9.1f}' if 'cuda_peak_mib' in r else ''
        print(f'{name:24s} {r["step_s"]:8.3f} {r["saved_mib"]:10.1f}{extra}')
    print(f'ACMKD step / sum of 3 KD steps: {acmkd["step_s"] / total["step_s"]:.2f} (L_logit only: '
          f'{results["ACMKD L_logit only"]["step_s"] / total["step_s"]:.2f}); '
          f'ACMKD saved activations / largest KD step: {acmkd["saved_mib"] / peak["saved_mib"]:.2f}, '
          f'/ sum of the 3: {acmkd["saved_mib"] / sum(r["saved_mib"] for r in kd_rows):.2f}')
    return results


if __name__ == '__main__':
    main()
