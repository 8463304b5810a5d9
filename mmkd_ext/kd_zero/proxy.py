"""From a genome to a real MMRazor distillation: the distiller config, and the short proxy run that scores it.

:func:`distiller_cfg` turns a genome plus the model's knowledge sources into a ``ConfigurableDistiller``
dict (recorders, 1x1 connector, ``KDZeroLoss``); the search and the final distillation use the same
function. :class:`ProxyEvaluator` trains the student with it for a fraction of the schedule with an
MMEngine ``Runner`` (METHODS.md 2.5 ``evaluate``) and computes the fitness terms on a validation split, for
classification or segmentation (:mod:`~mmkd_ext.kd_zero.task_outputs`; detection is not searched, Sec. 4.3).
"""
from __future__ import annotations

import copy
import math
import os.path as osp
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..checks import check_cfg_options
from ..held_out import held_out_dataloaders
from .genome import Genome
from .hooks import CandidateRejected
from .task_outputs import check_searchable, infer_task, task_fitness

LOSS_NAME = 'loss_kdzero'


def _recorder(source: str, inputs: bool = False) -> dict:
    return dict(type='ModuleInputs' if inputs else 'ModuleOutputs', source=source)


def _mapping(from_student: bool, recorder: str, data_idx: Optional[int] = None,
             connector: Optional[str] = None) -> dict:
    out = dict(from_student=from_student, recorder=recorder)
    if data_idx is not None:
        out['data_idx'] = data_idx
    if connector:
        out['connector'] = connector
    return out


def aligner_cfg(knowledge: str, src: dict, always: bool = False) -> Optional[dict]:
    """The student aligner: 1x1 conv + BN for features [P + R], a linear map for embeddings [R].

    Args:
        knowledge: 'feature' / 'embedding' / 'logits'.
        src: the knowledge source dict with ``student_channels`` / ``teacher_channels``.
        always: add the feature aligner even when the channels already match (the paper's "simple 1x1-Conv").
    """
    c_s, c_t = src.get('student_channels'), src.get('teacher_channels')
    if knowledge == 'logits' or (c_s == c_t and not (always and knowledge == 'feature')):
        return None
    if c_s is None or c_t is None:
        raise KeyError(f"kd_zero_sources['{knowledge}'] needs student_channels and teacher_channels to build the "
                       'aligner when student and teacher widths differ')
    if knowledge == 'feature':
        return dict(type='ConvModuleConnector', in_channel=c_s, out_channel=c_t, kernel_size=1,
                    norm_cfg=dict(type='BN'), act_cfg=None)
    return dict(type='TorchNNConnector', module_name='Linear', module_args=dict(in_features=c_s, out_features=c_t))


def distiller_cfg(genome: Genome, sources: dict, align_always: bool = False) -> dict:
    """A ``ConfigurableDistiller`` dict applying ``KDZeroLoss(genome)`` to the chosen knowledge.

    Args:
        genome: the distiller.
        sources: ``{'feature'|'embedding'|'logits': dict(student=..., teacher=..., student_channels=...,
            teacher_channels=..., data_idx=None), 'labels': dict(student='head.loss_module', data_idx=1)}``;
            module names of the knowledge in student and teacher. ``logits`` is always needed (calibration).
        align_always: see :func:`aligner_cfg`.

    Returns:
        The distiller config dict.
    """
    if genome.knowledge not in sources:
        raise KeyError(f'genome uses {genome.knowledge!r} knowledge but kd_zero_sources only defines '
                       f'{sorted(k for k in sources if k != "labels")}')
    src, logits = sources[genome.knowledge], sources['logits']
    student_rec = dict(knowledge=_recorder(src['student']), logits=_recorder(logits['student']))
    teacher_rec = dict(knowledge=_recorder(src['teacher']), logits=_recorder(logits['teacher']))
    idx = src.get('data_idx')
    connector = aligner_cfg(genome.knowledge, src, align_always)
    mapping = dict(preds_S=_mapping(True, 'knowledge', idx, 'kd_align' if connector else None),
                   preds_T=_mapping(False, 'knowledge', idx))
    if genome.calibration != 'no':
        mapping.update(logits_S=_mapping(True, 'logits'), logits_T=_mapping(False, 'logits'))
    labels = sources.get('labels')
    if genome.calibration in ('focal', 'conf'):
        if labels is None:
            raise KeyError(f"calibration {genome.calibration!r} needs kd_zero_sources['labels'] (e.g. "
                           "dict(student='head.loss_module', data_idx=1))")
        student_rec['labels'] = _recorder(labels['student'], inputs=True)
        mapping['gt_labels'] = _mapping(True, 'labels', labels.get('data_idx', 1))
    cfg = dict(type='ConfigurableDistiller', student_recorders=student_rec, teacher_recorders=teacher_rec,
               distill_losses={LOSS_NAME: dict(type='KDZeroLoss', genome=genome.to_dict())},
               loss_forward_mappings={LOSS_NAME: mapping})
    if connector:
        cfg['connectors'] = dict(kd_align=connector)
    return cfg


def compress_schedule(schedulers: Union[dict, List[dict]], fraction: float) -> List[dict]:
    """Scale the epoch/iteration fields of MMEngine param schedulers by ``fraction`` ([R] METHODS.md 2.5).

    Args:
        schedulers: one scheduler config (mmpretrain's ImageNet schedules) or a list of them.
        fraction: share of the schedule the proxy trains.

    Returns:
        The compressed scheduler configs, as a list.
    """
    out = []
    for sched in copy.deepcopy([schedulers] if isinstance(schedulers, dict) else list(schedulers)):
        for key in ('T_max', 'begin', 'end', 'total_iters'):
            if key in sched and isinstance(sched[key], (int, float)) and sched[key] < 1e8:
                sched[key] = max(1, math.ceil(sched[key] * fraction)) if sched[key] else 0
        if 'milestones' in sched:
            sched['milestones'] = [max(1, round(m * fraction)) for m in sched['milestones']]
        out.append(sched)
    return out


def proxy_config(base: Config, genome: Genome, fraction: float, work_dir: str, seed: int,
                 rejection: Optional[dict] = None, base_batch_size: Optional[int] = None) -> Config:
    """The final-distillation config ``base`` turned into a proxy run of ``genome``.

    Args:
        base: a distillation config with ``kd_zero_sources`` (e.g. configs/kd_zero/kd_zero_*_digits.py).
        genome: the candidate.
        fraction: share of the schedule to train ([P] 5%): of the epochs (at least one) or, for an
            iteration-based ``train_cfg`` (``max_iters``), of the iterations (at least one).
        work_dir: the run's work dir.
        seed: fixed seed (every candidate starts from the same student initialisation).
        rejection: ``KDZeroRejectionHook`` arguments, or None to disable rejection.
        base_batch_size: the total batch the config's learning rate is tuned for; the proxy (one process)
            scales it linearly to its own batch with MMEngine's ``auto_scale_lr``. None: no scaling.
    """
    cfg = copy.deepcopy(base)
    cfg.model.distiller = ConfigDict(distiller_cfg(genome, cfg.kd_zero_sources, cfg.get('kd_zero_align_always',
                                                                                      False)))
    if 'max_iters' in cfg.train_cfg:  # iteration-based schedules (mmseg: 40K iterations) [R]
        iters = max(1, math.ceil(cfg.train_cfg.max_iters * fraction))
        cfg.train_cfg = ConfigDict(type='IterBasedTrainLoop', max_iters=iters, val_interval=10 ** 9)
        share = iters / base.train_cfg.max_iters
    else:
        epochs = max(1, math.ceil(cfg.train_cfg.max_epochs * fraction))
        cfg.train_cfg = ConfigDict(by_epoch=True, max_epochs=epochs)
        share = epochs / base.train_cfg.max_epochs
    for key in ('val_cfg', 'val_dataloader', 'val_evaluator', 'test_cfg', 'test_dataloader', 'test_evaluator'):
        cfg[key] = None  # the fitness is computed after training, on its own split
    cfg.param_scheduler = compress_schedule(cfg.get('param_scheduler') or [], share)
    if base_batch_size is not None:  # [R] linear rule lr x batch / base_batch (MMEngine Runner.scale_lr)
        cfg.auto_scale_lr = dict(enable=True, base_batch_size=base_batch_size)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 9, save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10 ** 6)
    hooks = [h for h in cfg.get('custom_hooks', []) or []
             if str(h.get('type')).split('.')[-1] != 'KDZeroRejectionHook']
    if rejection is not None:  # scoped: the base config's default scope may be mmseg / mmpretrain
        hooks.append(dict(type='mmrazor.KDZeroRejectionHook', **rejection))
    cfg.custom_hooks = hooks
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'ERROR'
    cfg.visualizer = dict(type='Visualizer', vis_backends=[])
    cfg.experiment_name = f'proxy_{time.time_ns()}'
    return cfg


def resolve_base_batch_size(base: Config, path: str, base_batch_size: Optional[int]) -> int:
    """The total batch the base config's lr is tuned for (see ``ProxyEvaluator(base_batch_size)``).

    Args:
        base: the final-distillation config as written (before the search's cfg_options).
        path: its file name; a multi-GPU name ``..._{N}xb{B}-...`` with N > 1 must say its base batch.
        base_batch_size: the explicit value, or None.

    Returns:
        The base batch size.
    """
    if base_batch_size is not None:
        return int(base_batch_size)
    auto = base.get('auto_scale_lr') or {}
    if auto.get('base_batch_size'):
        return int(auto['base_batch_size'])
    gpus = re.search(r'_(\d+)xb(\d+)', osp.basename(path))
    if gpus and int(gpus.group(1)) > 1:
        raise ValueError(f'{path} trains on {gpus.group(1)} GPUs, so its lr is tuned for a batch of '
                         f'{int(gpus.group(1)) * int(gpus.group(2))}, but the proxies run as one process: set '
                         "proxy=dict(base_batch_size=...) in the search config (or auto_scale_lr.base_batch_size in "
                         'the base config) so that the proxy lr is scaled to its batch')
    return int(base.train_dataloader.batch_size)


def describe_proxy_lr(base: Config, batch_size: int, base_batch_size: int) -> str:
    """One line: the proxy's batch and learning rate (linear rule), for the log."""
    lr = (base.get('optim_wrapper') or {}).get('optimizer', {}).get('lr')
    ratio = batch_size / base_batch_size
    shown = f'lr {lr:g} x {batch_size}/{base_batch_size} = {lr * ratio:g}' if lr is not None else \
        f'lr x {batch_size}/{base_batch_size}'
    return f'one process, batch {batch_size}, {shown} (linear rule, MMEngine auto_scale_lr)'


@dataclass
class EvalResult:
    """Outcome of one candidate: status 'ok' or 'rejected', fitness terms, iterations spent/planned."""
    status: str
    terms: Dict[str, float] = field(default_factory=dict)
    reason: str = ''
    iters: int = 0
    planned_iters: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(status=self.status, terms=self.terms, reason=self.reason, iters=self.iters,
                    planned_iters=self.planned_iters, seconds=self.seconds)

    @classmethod
    def from_dict(cls, d: dict) -> 'EvalResult':
        return cls(**d)


class ProxyEvaluator:
    """Score a genome by a short real MMRazor distillation (METHODS.md 2.5 ``evaluate``).

    Args:
        base_config: path of the final-distillation config (with ``kd_zero_sources``).
        work_dir: the search's folder; the proxy runs of rank r write into ``proxy_rank<r>/`` (one sub-folder
            per candidate, reused).
        fraction: share of the training schedule per candidate ([P] 0.05).
        seed: student initialisation seed, identical for every candidate.
        rejection: ``KDZeroRejectionHook`` arguments; None disables the protocol.
        fitness_dataloader: dataloader config of the held-out split for the fitness (default: val_dataloader).
        held_out_every: instead of ``fitness_dataloader``: hold out every ``held_out_every``-th training image
            (:mod:`mmkd_ext.held_out`, the split AMD and ACMKD select on): the proxies train on the others and
            the fitness is measured on them, with ``val_dataloader``'s pipeline and batch size.
        fitness_samples: images used for the fitness ([R] 2,000).
        min_accuracy: reject when the proxy accuracy (%; pixel accuracy for segmentation) is below this
            ([R] 2x chance, ``200 / num_classes``).
        cfg_options: overrides merged into the base config (e.g. ``model=dict(teacher_ckpt=...)``).
        task: 'classification', 'segmentation' or 'auto' (inferred from the student, see
            :func:`~mmkd_ext.kd_zero.task_outputs.infer_task`); 'detection' raises (the paper reuses the
            ImageNet-searched distiller on COCO).
        seg_options: segmentation fitness options (``ignore_index``, ``cka_feature``, ``cka_pixels``, ``seed``;
            see :func:`~mmkd_ext.kd_zero.task_outputs.collect_segmentation`).
        base_batch_size: total batch (all GPUs) the base config's learning rate is tuned for. A proxy runs as
            one process with the config's per-GPU ``train_dataloader.batch_size`` B and trains at
            ``lr x B / base_batch_size`` ([R] linear rule, MMEngine ``auto_scale_lr``). Default: the base
            config's ``auto_scale_lr.base_batch_size``, else its own batch before ``cfg_options`` (a one-GPU
            config; a multi-GPU ``NxbB`` config without either is refused).
    """

    def __init__(self, base_config: str, work_dir: str, fraction: float = 0.05, seed: int = 0,
                 rejection: Optional[dict] = None, fitness_dataloader: Optional[dict] = None,
                 fitness_samples: int = 2000, min_accuracy: Optional[float] = None,
                 cfg_options: Optional[dict] = None, task: str = 'auto', seg_options: Optional[dict] = None,
                 base_batch_size: Optional[int] = None, held_out_every: Optional[int] = None) -> None:
        self.base = Config.fromfile(base_config)
        check_cfg_options(self.base, cfg_options)
        self.base_batch_size = resolve_base_batch_size(self.base, base_config, base_batch_size)  # before overrides
        if cfg_options:
            self.base.merge_from_dict(cfg_options)
        self.task = infer_task(self.base, task)
        check_searchable(self.task, base_config)
        if 'kd_zero_sources' not in self.base:
            raise KeyError(f'{base_config} has no kd_zero_sources: the search needs the module names of the '
                           'feature/embedding/logits knowledge (see configs/kd_zero/README.md)')
        if seg_options and self.task != 'segmentation':
            raise ValueError(f'seg_options are for segmentation searches; {base_config} is {self.task}')
        self.work_dir, self.fraction, self.seed = work_dir, fraction, seed
        # one folder per rank (read now: the proxies run while the search hides the process group)
        self.run_dir = osp.join(work_dir, f'proxy_rank{get_rank()}')
        self.rejection = rejection
        if held_out_every is not None:
            if fitness_dataloader is not None:
                raise ValueError('proxy: give either fitness_dataloader or held_out_every, not both')
            self.base.train_dataloader, fitness_dataloader = held_out_dataloaders(
                self.base.train_dataloader, self.base.val_dataloader, held_out_every)
        self.fitness_dataloader = fitness_dataloader or self.base.val_dataloader
        self.fitness_samples = fitness_samples
        self.seg_options = dict(seg_options or {})
        self.min_accuracy = min_accuracy
        self.batch_size = int(self.base.train_dataloader.batch_size)
        print_log(f'KD-Zero proxies: {describe_proxy_lr(self.base, self.batch_size, self.base_batch_size)}',
                  logger='current')

    def _min_accuracy(self, model) -> float:
        """[R] 2 x chance: ``200 / num_classes`` (the config's ``num_classes``, else the student's head)."""
        if self.min_accuracy is not None:
            return self.min_accuracy
        num_classes = self.base.get('num_classes')
        if num_classes is None:
            head = getattr(model.student, 'decode_head', None) or getattr(model.student, 'head', None)
            num_classes = getattr(head, 'num_classes', None) or 10
        return 200.0 / num_classes

    def __call__(self, genome: Genome) -> EvalResult:
        start = time.perf_counter()
        cfg = proxy_config(self.base, genome, self.fraction, self.run_dir, self.seed, self.rejection,
                           self.base_batch_size)
        runner, planned = None, 0
        try:
            runner = Runner.from_cfg(cfg)
            planned = cfg.train_cfg.max_iters if 'max_iters' in cfg.train_cfg else \
                cfg.train_cfg.max_epochs * len(runner.train_dataloader)
            runner.train()
        except CandidateRejected as err:
            return EvalResult('rejected', reason=err.reason, iters=err.iters, planned_iters=planned,
                              seconds=time.perf_counter() - start)
        except (RuntimeError, ValueError) as err:  # [R] runtime/shape errors reject the candidate
            iters = runner.iter if runner is not None else 0
            return EvalResult('rejected', reason=f'{type(err).__name__}: {str(err)[:200]}', iters=iters,
                              planned_iters=planned, seconds=time.perf_counter() - start)
        loader = Runner.build_dataloader(self.fitness_dataloader, seed=self.seed)
        terms = task_fitness(self.task, runner.model, loader, self.fitness_samples, self.seg_options)
        result = EvalResult('ok', terms, iters=planned, planned_iters=planned, seconds=time.perf_counter() - start)
        min_accuracy = self._min_accuracy(runner.model)
        if terms['accuracy'] < min_accuracy:
            result.status = 'rejected'
            result.reason = f'proxy accuracy {terms["accuracy"]:.1f}% < {min_accuracy:g}%'
        return result
