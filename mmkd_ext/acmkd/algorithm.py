"""``ACMKDDistill``: one frozen teacher, N heterogeneous students, one shared teacher forward per step.

Paper: Ni et al., "Adaptive Cross-architecture Mutual Knowledge Distillation"; spec METHODS.md 3.
Per step (Eq. 9): ``L = L_logit + alpha * L_att + beta * L_ssd`` where
- ``L_logit`` (Eqs. 1-3): every student's CE plus tau^2 KL from the teacher;
- ``L_att`` (Eqs. 4-6): cosine distance of CBAM channel/spatial attention maps, teacher vs students;
- ``L_ssd`` (Eqs. 7-8): after ``ssd_start_epoch`` epochs, the weakest student (re-ranked every epoch
  by :class:`~mmkd_ext.acmkd.hooks.ACMKDHook`) also learns from the frozen stronger students.
Every student has its own optimizer (``OptimWrapperDict`` built by
:class:`~mmkd_ext.acmkd.optim.ACMKDOptimWrapperConstructor`).
"""
from __future__ import annotations

import copy
import logging
import math
from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from mmrazor.models.algorithms import BaseAlgorithm
from torch import nn

from ..registry import MODELS
from ..weights import load_weights
from .attention import AttentionMaps
from .branches import AttentionHeads, StageRecorder, StudentBranch, check_same_classes, probe_shapes
from .export import plain_cfg
from .losses import ATT_MODES, dml_losses, logit_losses, ssd_loss, stagewise_attention_loss

TEACHER_ATTENTION = 'teacher_attention'  # the optimizer / module name of the teacher's CBAM modules


def _labels(data_samples: Sequence) -> torch.Tensor:
    """(B,) class indices from mmpretrain ``DataSample``s."""
    return torch.cat([s.gt_label for s in data_samples]).long()


def step_all(optim_wrapper: OptimWrapperDict, total: torch.Tensor, amp: bool = False) -> None:
    """One backward of ``total``, then every wrapper's optimizer steps (each holds only its own parameters).

    With ``AmpOptimWrapper`` s ([R] ``--amp``) the wrappers share the first one's ``GradScaler``: one scaled
    backward, per optimizer unscale (+ gradient clipping) and ``scaler.step``, and one ``scaler.update()``
    (PyTorch's recipe for several optimizers on one loss); a skipped step (inf/nan) skips every student.

    Args:
        optim_wrapper: one wrapper per optimised module.
        total: the summed loss of Eq. 9 (or L_ssd alone).
        amp: the wrappers are ``AmpOptimWrapper`` s.
    """
    wrappers = list(optim_wrapper.values())
    for wrapper in wrappers:
        wrapper.zero_grad()
    if not amp:
        total.backward()
        for wrapper in wrappers:
            wrapper.step()
            wrapper.zero_grad()
        return
    scaler = wrappers[0].loss_scaler
    for wrapper in wrappers[1:]:
        wrapper.loss_scaler = scaler  # one scale for the one backward
    scaler.scale(total).backward()
    for wrapper in wrappers:
        if wrapper.clip_grad_kwargs:
            scaler.unscale_(wrapper.optimizer)
            wrapper._clip_grad()
        scaler.step(wrapper.optimizer)
    scaler.update(wrappers[0]._scale_update_param)
    for wrapper in wrappers:
        wrapper.zero_grad()


@MODELS.register_module()
class ACMKDDistill(BaseAlgorithm):
    """Adaptive Cross-architecture Mutual Knowledge Distillation (ACMKD).

    Args:
        students: name -> ``dict(model=<mmpretrain classifier cfg>, stages=[module names],
            num_extra_tokens=None)``; at least two, config order is the ranking tie-break order.
        teacher: mmpretrain classifier cfg (frozen; eval mode always).
        teacher_stages: the teacher's module names, one per student stage (paper: N layers).
        teacher_ckpt: checkpoint of the teacher, or ``None`` (random teacher, for tests).
        teacher_ckpt_strict: every key and shape of ``teacher_ckpt`` must match (:mod:`mmkd_ext.weights`);
            False allows a partial load.
        teacher_num_extra_tokens: leading class tokens of a ViT teacher's stage outputs.
        input_size: (H, W) of the preprocessed training images, for the dry run that finds channels.
        tau: temperature of all KD terms (paper: 1).
        lambda_ce: lambda_0 of Eq. 3 (paper: 1), on every student's CE ([R] C7).
        lambda_kd: lambda_1..3 of Eq. 3 (paper: 1).
        alpha: weight of L_att in Eq. 9 ([R] 1).
        beta: weight of L_ssd in Eq. 9 ([R] 1).
        lambda_ssd_ce: lambda_4 of Eq. 8 (paper: 1).
        lambda_ssd_kd: lambda_5 = lambda_6 of Eq. 8 (paper: 1), per stronger student.
        ssd_start_epoch: n, the epoch (0-based) from which L_ssd is on; ``None`` -> [R] 10% of the
            training epochs (rounded up), set by :class:`ACMKDHook` before training.
        ssd_mode: ``'combined'`` ([R] default: part of Eq. 9) or ``'separate_step'`` (an extra step on
            the same batch that updates only the weakest student with beta * L_ssd).
        attention: ``'cbam'`` ([R] default) or ``'parameter_free'``.
        att_mode: ``'pairwise'`` ([R] default), ``'multilinear'`` (literal Eq. 5) or ``'pairwise_all'``.
        att_reduction: CBAM MLP ratio r ([R] 16).
        att_kernel_size: CBAM spatial kernel ([R] 7).
        teacher_attention_epochs: epochs spent pre-training the teacher's CBAM modules (with linear
            probes, teacher backbone frozen) before they freeze and L_att switches on ([R] 1).
        dml_weight: gamma of the optional DML term (METHODS.md C4; [R] 0 = off).
        data_preprocessor: defaults to the first student's.
        init_cfg: MMEngine init config.
    """

    def __init__(self, students: Dict[str, dict], teacher: dict, teacher_stages: Sequence[str],
                 teacher_ckpt: Optional[str] = None, teacher_num_extra_tokens: Optional[int] = None,
                 teacher_ckpt_strict: bool = True,
                 input_size: Sequence[int] = (224, 224), tau: float = 1.0, lambda_ce: float = 1.0,
                 lambda_kd: float = 1.0, alpha: float = 1.0, beta: float = 1.0, lambda_ssd_ce: float = 1.0,
                 lambda_ssd_kd: float = 1.0, ssd_start_epoch: Optional[int] = None, ssd_mode: str = 'combined',
                 attention: str = 'cbam', att_mode: str = 'pairwise', att_reduction: int = 16,
                 att_kernel_size: int = 7, teacher_attention_epochs: int = 1, dml_weight: float = 0.0,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None, init_cfg: Optional[dict] = None) -> None:
        if not isinstance(students, dict) or len(students) < 2:
            raise ValueError(f'ACMKD trains at least two students (got {len(students or {})}); give students=dict('
                             'name=dict(model=..., stages=[...]), ...) with two or more entries')
        if att_mode not in ATT_MODES:
            raise ValueError(f'att_mode={att_mode!r} is unknown; use one of {ATT_MODES}')
        if ssd_mode not in ('combined', 'separate_step'):
            raise ValueError(f"ssd_mode={ssd_mode!r} is unknown; use 'combined' or 'separate_step'")
        classifiers = {name: self._build_student(name, spec) for name, spec in students.items()}
        first = next(iter(classifiers.values()))
        if data_preprocessor is None:
            data_preprocessor = copy.deepcopy(first.data_preprocessor)
        # BaseAlgorithm.__init__ wraps one `architecture`; ACMKD has N peers, so it initialises BaseModel directly.
        BaseModel.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student_names: List[str] = list(students)
        self.student_cfgs = {name: plain_cfg(spec['model']) if isinstance(spec['model'], dict) else None
                             for name, spec in students.items()}
        self.tau, self.lambda_ce, self.lambda_kd = tau, lambda_ce, lambda_kd
        self.alpha, self.beta = alpha, beta
        self.lambda_ssd_ce, self.lambda_ssd_kd = lambda_ssd_ce, lambda_ssd_kd
        self.ssd_start_epoch, self.ssd_mode = ssd_start_epoch, ssd_mode
        self.attention_kind, self.att_mode = attention, att_mode
        self.teacher_attention_epochs = teacher_attention_epochs if attention == 'cbam' else 0
        self.dml_weight = dml_weight
        self.input_size = tuple(input_size)

        self._build_teacher(teacher, teacher_stages, teacher_ckpt, teacher_num_extra_tokens, teacher_ckpt_strict)
        shapes = {'teacher': probe_shapes(self.teacher, self._teacher_recorder, self.input_size)}
        recorders = {}
        for name, spec in students.items():
            recorders[name] = StageRecorder(classifiers[name], spec['stages'], f'ACMKD student {name!r}',
                                            spec.get('num_extra_tokens'))
            shapes[name] = probe_shapes(classifiers[name], recorders[name], self.input_size)
        self.num_classes = check_same_classes({n: k for n, (k, _) in shapes.items()})
        self._check_stage_counts({n: len(s) for n, (_, s) in shapes.items()})
        self.teacher_attention = AttentionHeads([c for c, _, _ in shapes['teacher'][1]], attention, att_reduction,
                                                att_kernel_size, num_classes=self.num_classes)
        for name in self.student_names:
            heads = AttentionHeads([c for c, _, _ in shapes[name][1]], attention, att_reduction, att_kernel_size)
            self.add_module(self.branch_key(name), StudentBranch(classifiers[name], recorders[name], heads))

        self.epoch = 0
        self.weakest: Optional[str] = None
        self._train_hits = {name: [0.0, 0.0] for name in self.student_names}  # name -> [correct, seen]

    # ------------------------------------------------------------------ construction

    @staticmethod
    def branch_key(name: str) -> str:
        """Top-level module name of student ``name`` (``student_<name>``)."""
        return f'student_{name}'

    @staticmethod
    def _build_student(name: str, spec: dict) -> nn.Module:
        if not name.isidentifier():
            raise ValueError(f'student name {name!r} must be a Python identifier (letters, digits, underscores)')
        if not isinstance(spec, dict) or 'model' not in spec or 'stages' not in spec:
            raise ValueError(f'student {name!r} needs dict(model=<classifier cfg>, stages=[module names]), '
                             f'got {spec!r}')
        model = spec['model']
        return MODELS.build(copy.deepcopy(model)) if isinstance(model, dict) else model

    def _build_teacher(self, cfg: Union[dict, nn.Module], stages: Sequence[str], ckpt: Optional[str],
                       num_extra_tokens: Optional[int], strict: bool = True) -> None:
        self.teacher = MODELS.build(copy.deepcopy(cfg)) if isinstance(cfg, dict) else cfg
        if ckpt:
            load_weights(self.teacher, ckpt, strict)
            self.teacher._is_init = True  # keep the loaded weights through init_weights()
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.teacher.eval()
        self._teacher_recorder = StageRecorder(self.teacher, stages, 'ACMKD teacher', num_extra_tokens)

    @staticmethod
    def _check_stage_counts(counts: Dict[str, int]) -> None:
        if len(set(counts.values())) != 1:
            listing = ', '.join(f'{n}: {k}' for n, k in counts.items())
            raise ValueError(f'ACMKD pairs stage i of the teacher with stage i of every student, but the numbers '
                             f'of stages differ ({listing}); list the same number of stages everywhere')

    # ------------------------------------------------------------------ access

    def branch(self, name: str) -> StudentBranch:
        """Student ``name``'s branch, unwrapped from DDP."""
        module = getattr(self, self.branch_key(name))
        return module.module if is_model_wrapper(module) else module

    def student(self, name: str) -> nn.Module:
        """Student ``name``'s mmpretrain classifier."""
        return self.branch(name).classifier

    def _heads(self, module: nn.Module) -> nn.Module:
        return module.module if is_model_wrapper(module) else module

    def optim_groups(self) -> Dict[str, nn.Module]:
        """Modules that each get their own optimizer: every student branch, and the teacher's CBAMs."""
        groups = {name: self.branch(name) for name in self.student_names}
        heads = self._heads(self.teacher_attention)
        if any(p.requires_grad for p in heads.parameters()):
            groups[TEACHER_ATTENTION] = heads
        return groups

    def train(self, mode: bool = True) -> 'ACMKDDistill':
        super().train(mode)
        self.teacher.eval()  # frozen teacher: BN/dropout always in eval mode
        return self

    # ------------------------------------------------------------------ schedule state (set by ACMKDHook)

    def set_total_epochs(self, max_epochs: int) -> None:
        """Resolve ``ssd_start_epoch=None`` to [R] 10% of the training epochs (METHODS.md 3.5)."""
        if self.ssd_start_epoch is None:
            self.ssd_start_epoch = max(1, math.ceil(0.1 * max_epochs))

    def set_epoch(self, epoch: int) -> None:
        """The 0-based epoch being trained."""
        self.epoch = epoch

    @property
    def teacher_attention_training(self) -> bool:
        """Whether the teacher's CBAM modules are still being pre-trained (L_att off meanwhile)."""
        return self.epoch < self.teacher_attention_epochs

    @property
    def ssd_active(self) -> bool:
        """Whether L_ssd is on: after ``ssd_start_epoch`` epochs and once a weakest student is known."""
        start = self.ssd_start_epoch if self.ssd_start_epoch is not None else math.inf
        return self.weakest is not None and self.epoch >= start and self.beta > 0

    def train_accuracies(self, reset: bool = True) -> Dict[str, Optional[float]]:
        """Running training top-1 (%) of every student since the last reset (``None`` if nothing seen)."""
        accs = {n: (100.0 * float(c) / s if s else None) for n, (c, s) in self._train_hits.items()}
        if reset:
            self._train_hits = {name: [0.0, 0.0] for name in self.student_names}
        return accs

    # ------------------------------------------------------------------ losses

    @property
    def attention_active(self) -> bool:
        """Whether L_att is on (alpha > 0 and the teacher's attention modules are pre-trained)."""
        return self.alpha > 0 and not self.teacher_attention_training

    def _teacher_forward(self, inputs: torch.Tensor, labels: torch.Tensor
                         ) -> Tuple[torch.Tensor, List[AttentionMaps], Dict[str, torch.Tensor]]:
        with torch.no_grad():
            logits, feats = self._teacher_recorder(self.teacher, inputs)
        losses, maps = {}, []
        if self.teacher_attention_learning:
            maps, probes = self.teacher_attention(feats, probe=True)
            losses['teacher.loss_probe'] = sum(nn.functional.cross_entropy(p, labels) for p in probes) / len(probes)
        elif self.attention_active:
            with torch.no_grad():
                maps = self.teacher_attention(feats)
        return logits.detach(), maps, losses

    def loss(self, inputs: torch.Tensor, data_samples: Sequence) -> Dict[str, torch.Tensor]:
        """All loss terms of Eq. 9 for one batch, keyed ``<student>.loss_*``, ``loss_att``, ``ssd.loss_*``.

        Args:
            inputs: (B, 3, H, W) preprocessed images.
            data_samples: mmpretrain ``DataSample``s with ``gt_label``.

        Returns:
            Loss dict (MMEngine ``parse_losses`` sums every key containing ``loss``).
        """
        labels = _labels(data_samples).to(inputs.device)
        t_logits, t_maps, losses = self._teacher_forward(inputs, labels)  # one shared teacher forward
        att = self.attention_active
        outs = {name: getattr(self, self.branch_key(name))(inputs, with_attention=att) for name in self.student_names}
        logits = {name: out[0] for name, out in outs.items()}
        for name, terms in logit_losses(logits, t_logits, labels, self.tau, self.lambda_ce, self.lambda_kd).items():
            losses.update({f'{name}.{k}': v for k, v in terms.items()})
        if att:
            losses['loss_att'] = self.alpha * stagewise_attention_loss(
                t_maps, [outs[n][1] for n in self.student_names], self.att_mode)
        if self.ssd_active and self.ssd_mode == 'combined':
            losses.update(self._ssd_terms(logits[self.weakest], logits, labels))
        if self.dml_weight > 0:
            for name, term in dml_losses(logits, self.tau).items():
                losses[f'{name}.loss_dml'] = self.dml_weight * term
        self._count_hits(logits, labels)
        return losses

    def _ssd_terms(self, weak_logits: torch.Tensor, logits: Dict[str, torch.Tensor],
                   labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        strong = [logits[n] for n in self.student_names if n != self.weakest]
        terms = ssd_loss(weak_logits, strong, labels, self.tau, self.lambda_ssd_ce, self.lambda_ssd_kd)
        return {'ssd.loss_ce': self.beta * terms['loss_ssd_ce'], 'ssd.loss_kd': self.beta * terms['loss_ssd_kd']}

    @torch.no_grad()
    def _count_hits(self, logits: Dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        """Add the batch's correct predictions per student: a 0-dim tensor on the logits' device (``float()`` here
        waited for the GPU every step; :meth:`train_accuracies` reads it once an epoch), and the images seen."""
        for name, z in logits.items():
            hits = self._train_hits[name]
            hits[0] = hits[0] + (z.argmax(dim=1) == labels).sum()
            hits[1] += labels.numel()

    # ------------------------------------------------------------------ optimisation

    @staticmethod
    def _check_wrappers(optim_wrapper: OptimWrapperDict, names: Sequence[str]) -> bool:
        """Check the per-student wrappers; returns True when they are all ``AmpOptimWrapper`` (``--amp``)."""
        if not isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError('ACMKDDistill needs one optimizer per student: set optim_wrapper=dict(constructor='
                            "'ACMKDOptimWrapperConstructor', optim_wrapper=dict(type='OptimWrapper', optimizer=...))")
        missing = [n for n in names if n not in optim_wrapper.optim_wrappers]
        if missing:
            raise KeyError(f'no optimizer for {missing}; the OptimWrapperDict has {list(optim_wrapper.keys())}')
        kinds = {name: type(wrapper) for name, wrapper in optim_wrapper.items()}
        for name, wrapper in optim_wrapper.items():
            if kinds[name] not in (OptimWrapper, AmpOptimWrapper) or wrapper._accumulative_counts != 1:
                raise NotImplementedError(
                    f'optimizer {name!r}: ACMKD steps every student from one backward pass of Eq. 9, which needs an '
                    'OptimWrapper or AmpOptimWrapper with accumulative_counts=1 (no gradient accumulation), got '
                    f'{kinds[name].__name__} with accumulative_counts={wrapper._accumulative_counts}')
        if len(set(kinds.values())) > 1:
            raise NotImplementedError(f'ACMKD needs the same wrapper type for every student (all AMP or none), got '
                                      f'{ {n: k.__name__ for n, k in kinds.items()} }')
        return next(iter(kinds.values())) is AmpOptimWrapper

    def train_step(self, data: Union[dict, tuple, list], optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One ACMKD step: one teacher forward, every student forward, one backward of Eq. 9, every optimizer steps.

        Each optimizer holds only its own student's (and attention modules') parameters, so one
        backward of the summed loss followed by each optimizer's step updates each student with the
        gradient of its own terms (teacher and, for L_ssd, stronger-student logits are detached).

        Args:
            data: a batch from the dataloader.
            optim_wrapper: ``OptimWrapperDict`` with one wrapper per student (+ ``teacher_attention``).

        Returns:
            Log variables.
        """
        amp = self._check_wrappers(optim_wrapper, self.student_names)
        data = self.data_preprocessor(data, True)
        with self._optim_contexts(optim_wrapper):
            losses = self.loss(data['inputs'], data['data_samples'])
        total, log_vars = self.parse_losses(losses)
        step_all(self._stepped_wrappers(optim_wrapper), total, amp)
        if self.ssd_active and self.ssd_mode == 'separate_step':
            log_vars.update(self._separate_ssd_step(data, optim_wrapper[self.weakest], amp))
        return log_vars

    @property
    def teacher_attention_learning(self) -> bool:
        """Whether this step's loss has a gradient for the teacher's attention modules (the probe term)."""
        return self.teacher_attention_training and self.alpha > 0

    def _stepped_wrappers(self, optim_wrapper: OptimWrapperDict) -> OptimWrapperDict:
        """The wrappers whose parameters get a gradient this step.

        The Runner builds the ``OptimWrapperDict`` once, while the teacher's attention still trains; from epoch
        ``teacher_attention_epochs`` on (at once with ``alpha=0``) its optimizer has no gradient and is left
        out: with ``--amp``, ``GradScaler.step`` refuses an optimizer without gradients ("No inf checks were
        recorded for this optimizer").

        Args:
            optim_wrapper: every wrapper of the run.

        Returns:
            The students' wrappers, plus the teacher attention's while it learns.
        """
        if TEACHER_ATTENTION not in optim_wrapper.optim_wrappers or self.teacher_attention_learning:
            return optim_wrapper
        return OptimWrapperDict(**{name: wrapper for name, wrapper in optim_wrapper.items()
                                   if name != TEACHER_ATTENTION})

    def _optim_contexts(self, optim_wrapper: OptimWrapperDict) -> ExitStack:
        """Every wrapper's ``optim_context`` on its own module (autocast of each ``AmpOptimWrapper``)."""
        stack = ExitStack()
        groups = self.optim_groups()
        for name, wrapper in optim_wrapper.items():
            stack.enter_context(wrapper.optim_context(groups.get(name, self)))
        return stack

    def _separate_ssd_step(self, data: dict, wrapper: OptimWrapper, amp: bool = False) -> Dict[str, torch.Tensor]:
        """Option ``ssd_mode='separate_step'``: re-run S_low on the batch and step it with beta * L_ssd."""
        inputs, labels = data['inputs'], _labels(data['data_samples']).to(data['inputs'].device)
        with wrapper.optim_context(self.branch(self.weakest)):
            with torch.no_grad():
                strong = {n: self.branch(n)(inputs, with_attention=False)[0] for n in self.student_names
                          if n != self.weakest}
            weak = getattr(self, self.branch_key(self.weakest))(inputs, with_attention=False)[0]
            strong[self.weakest] = weak
            terms = self._ssd_terms(weak, strong, labels)
        total, log_vars = self.parse_losses(terms)
        step_all(OptimWrapperDict(**{self.weakest: wrapper}), total, amp)
        return {k: v for k, v in log_vars.items() if k != 'loss'}

    # ------------------------------------------------------------------ prediction

    @torch.no_grad()
    def predict_logits(self, inputs: torch.Tensor, with_teacher: bool = True) -> Dict[str, torch.Tensor]:
        """Logits of the teacher (optional) and of every student.

        Args:
            inputs: (B, 3, H, W) preprocessed images.
            with_teacher: run the teacher as well.

        Returns:
            name -> (B, K); the teacher under ``'teacher'``.
        """
        out = {name: self.student(name)(inputs, mode='tensor') for name in self.student_names}
        if with_teacher:
            out['teacher'] = self.teacher(inputs, mode='tensor')
        return out

    @staticmethod
    def ensemble_probs(student_logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """Mean of the students' softmax probabilities ([R] METHODS.md 3.7), (B, K)."""
        return torch.stack([z.softmax(dim=1) for z in student_logits]).mean(dim=0)

    def predict_all(self, data: Union[dict, tuple, list], with_teacher: bool = True) -> Dict[str, list]:
        """Predictions of the teacher (optional), every student and the ensemble, for one batch.

        Args:
            data: a batch from the dataloader.
            with_teacher: evaluate the teacher too.

        Returns:
            name -> list of ``DataSample`` with ``pred_score`` / ``pred_label`` (``'ensemble'`` included).
        """
        data = self.data_preprocessor(data, False)
        logits = self.predict_logits(data['inputs'], with_teacher)
        self._warn_non_finite(logits)
        probs = {name: z.softmax(dim=1) for name, z in logits.items()}
        probs['ensemble'] = self.ensemble_probs([logits[n] for n in self.student_names])
        return {name: self._to_samples(p, data['data_samples']) for name, p in probs.items()}

    def _warn_non_finite(self, logits: Dict[str, torch.Tensor]) -> None:
        bad = [name for name, z in logits.items() if not torch.isfinite(z).all()]
        if bad and not getattr(self, '_warned_non_finite', False):
            self._warned_non_finite = True
            print_log(f'ACMKD: {bad} gave non-finite logits in eval mode (their predictions and the ensemble count '
                      'as wrong); early in training this is usually unsettled BatchNorm running statistics, '
                      'which RedNet\'s involutions amplify', logger='current', level=logging.WARNING)

    @staticmethod
    def _to_samples(probs: torch.Tensor, data_samples: Sequence) -> list:
        if data_samples is None:
            from mmpretrain.structures import DataSample
            data_samples = [DataSample() for _ in range(len(probs))]
        samples = []
        for p, sample in zip(probs, data_samples):
            new = sample.clone()
            new.set_pred_score(p).set_pred_label(p.argmax(dim=0, keepdim=True))
            samples.append(new)
        return samples

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """Ensemble predictions (plain ``ValLoop``); :class:`ACMKDValLoop` evaluates every network."""
        return self.predict_all(data, with_teacher=False)['ensemble']

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        return self.val_step(data)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """``mode='loss'``: Eq. 9 terms; ``'predict'``: ensemble ``DataSample``s; ``'tensor'``: ensemble probs."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        probs = self.ensemble_probs(list(self.predict_logits(inputs, with_teacher=False).values()))
        if mode == 'tensor':
            return probs
        if mode == 'predict':
            return self._to_samples(probs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}; use loss, predict or tensor')
