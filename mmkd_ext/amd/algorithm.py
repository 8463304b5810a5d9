"""``AMDDistill``: joint optimisation of all teacher-assistant candidates (supp. Algorithm 1, METHODS.md §1.5).

One weight-shared network (the *architecture*), initialised from the teacher, is trained so that every
candidate sub-network (binary masks of scale s, nested) mimics a frozen teacher. Each step runs the
teacher once, then for every candidate scale of the step the masked student, and accumulates
``(L_ce + alpha L_logit + beta L_feat) / |subset|`` before one optimizer step. The subset is every candidate
(Algorithm 1) or a sample of them (``candidates_per_step``, :mod:`mmkd_ext.amd.sampling`).

The same algorithm runs the later iterations of the chain: ``teacher_scale < 1`` masks the frozen
teacher to the selected TA (same ranking, so the TA is a sub-network of the joint network), and
``scales=None`` trains a fixed hand-designed student (supp. Table 7) with 1x1 connectors.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmrazor.models.algorithms.base import BaseAlgorithm
from torch import Tensor, nn

from ..checks import check_module_name
from ..registry import MODELS
from ..weights import load_weights
from .bn_stats import BNStatBank, batch_norms, load_bn_stats
from .losses import dkd, feature_mimic, logit_kd
from .pruner import AMDPruner, load_scores
from .sampling import candidate_subset, check_candidates_per_step


class OutputRecorder:
    """Forward hooks that keep the last output of named modules."""

    def __init__(self, model: nn.Module, names: Sequence[str], role: str) -> None:
        self.names = list(names)
        modules = dict(model.named_modules())
        self.outputs: Dict[str, Tensor] = {}
        self._handles = []
        for name in self.names:
            check_module_name(model, name, role)
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, args, output):
            self.outputs[name] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def get(self) -> List[Tensor]:
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(f'modules {missing} were not called in the forward pass; check feature_modules')
        return [self.outputs[n] for n in self.names]


def _load_weights(model: nn.Module, ckpt: str, strict: bool = True, role: str = 'teacher_ckpt') -> dict:
    checkpoint = load_weights(model, ckpt, strict, role, 'model.teacher_ckpt_strict=False')
    model._is_init = True  # keep the loaded weights when the runner initialises the model
    return checkpoint.get('bn_stats') or {}


@MODELS.register_module()
class AMDDistill(BaseAlgorithm):
    """AMD joint optimisation (supp. Algorithm 1) as an MMRazor algorithm.

    Args:
        architecture: the weight-shared student config (same architecture as the teacher for AMD; any
            model when ``scales`` is None).
        teacher: the teacher config.
        teacher_ckpt: teacher weights (frozen).
        student_ckpt: student initial weights; ``'teacher'`` (default) inherits the teacher checkpoint
            (parameter sharing, §1.5); None keeps the config's initialisation.
        teacher_ckpt_strict: every key and shape of ``teacher_ckpt`` / ``student_ckpt`` must match
            (:mod:`mmkd_ext.weights`); False allows partial loads.
        scales: candidate FLOPs scales trained each step (sandwich over all of them); None trains the
            architecture unmasked.
        pruner: :class:`AMDPruner` arguments (``input_shape`` is required when ``scales`` or
            ``teacher_scale`` need masks).
        importance_file: ranking scores from the importance stage; without it CNN units are ranked by
            filter L1 norms of the loaded student (Li et al.).
        l1_greedy_scale: scale of the greedy L1 correction (defaults to ``min(scales)``).
        teacher_scale: mask the teacher to this scale (the selected TA of the previous iteration).
        alpha: logit-KD weight ([P] 1, supp. §5.1).
        beta: feature-mimicking weight ([R] 1).
        tau: KD temperature ([R] 1).
        ce_weight: weight of the task loss (0 reproduces "w/o L_CE", supp. Table 4).
        logit_loss: ``'kl'`` ([R] default) or ``'dkd'`` (supp. Table 4 "w/ L_dkd").
        dkd_cfg: ``zeta``, ``eta``, ``tau`` of DKD ([R] 1, 8, 4).
        logit_module: module whose output are the logits (``'head.fc'``, ``'decode_head.conv_seg'``).
        feature_modules: student modules whose outputs are mimicked (ViT blocks, CNN stages).
        teacher_feature_modules: teacher counterparts (default: same names).
        connector_channels: ``[(c_student, c_teacher), ...]`` per feature: a 1x1 conv on the student
            feature where widths differ (None: no connectors).
        private_bn_stats: keep BatchNorm running statistics per candidate ([R] ours, see
            :mod:`mmkd_ext.amd.bn_stats`); no effect on LayerNorm models.
        candidates_per_step: ``dict(mode='all' | 'sandwich' | 'single', num_random=2, seed=0)``: the
            candidates trained each step (:mod:`mmkd_ext.amd.sampling`); ``'all'`` (default) is Algorithm 1.
        data_preprocessor, init_cfg: as in :class:`BaseAlgorithm`.
    """

    def __init__(self, architecture: Union[BaseModel, dict], teacher: Union[BaseModel, dict],
                 teacher_ckpt: Optional[str] = None, student_ckpt: Optional[str] = 'teacher',
                 teacher_ckpt_strict: bool = True,
                 scales: Optional[Sequence[float]] = None, pruner: Optional[dict] = None,
                 importance_file: Optional[str] = None, l1_greedy_scale: Optional[float] = None,
                 teacher_scale: float = 1.0, alpha: float = 1.0, beta: float = 1.0, tau: float = 1.0,
                 ce_weight: float = 1.0, logit_loss: str = 'kl', dkd_cfg: Optional[dict] = None,
                 logit_module: str = 'head.fc', feature_modules: Sequence[str] = (),
                 teacher_feature_modules: Optional[Sequence[str]] = None,
                 connector_channels: Optional[Sequence[Tuple[int, int]]] = None, private_bn_stats: bool = True,
                 candidates_per_step: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        if logit_loss not in ('kl', 'dkd'):
            raise ValueError(f"logit_loss must be 'kl' or 'dkd', got {logit_loss!r}")
        self.teacher = MODELS.build(teacher) if isinstance(teacher, dict) else teacher
        teacher_bn = _load_weights(self.teacher, teacher_ckpt, teacher_ckpt_strict) if teacher_ckpt else {}
        for p in self.teacher.parameters():
            p.requires_grad = False
        ckpt = teacher_ckpt if student_ckpt == 'teacher' else student_ckpt
        student_bn = _load_weights(self.architecture, ckpt, teacher_ckpt_strict, 'student_ckpt') if ckpt else {}
        self.alpha, self.beta, self.tau, self.ce_weight = alpha, beta, tau, ce_weight
        self.logit_loss, self.dkd_cfg = logit_loss, dict(zeta=1.0, eta=8.0, tau=4.0, **(dkd_cfg or {}))
        self.scales = sorted((float(s) for s in scales), reverse=True) if scales else None
        self.candidates_per_step = check_candidates_per_step(candidates_per_step)
        # joint steps taken: a buffer, so the subset sequence continues after a resume (and is equal on all ranks)
        self.register_buffer('candidate_iter', torch.zeros((), dtype=torch.long))
        self.teacher_scale = float(teacher_scale)
        scores = load_scores(importance_file) if importance_file else None
        self.pruner = self._make_pruner(self.architecture, pruner, scores, l1_greedy_scale) if self.scales else None
        self.teacher_pruner = None
        if self.teacher_scale < 1.0:
            self.teacher_pruner = self._make_pruner(self.teacher, pruner, scores, l1_greedy_scale)
            self.teacher_pruner.apply(self.teacher_scale)
            load_bn_stats(self.teacher, teacher_bn, self.teacher_scale)  # the TA's own statistics
        self.bn_bank = None
        if self.scales and private_bn_stats and batch_norms(self.architecture):
            self.bn_bank = BNStatBank(self.architecture, self.scales)
            self.bn_bank.load(self.architecture, student_bn)
        t_feats = list(teacher_feature_modules or feature_modules)
        self.student_rec = OutputRecorder(self.architecture, [logit_module, *feature_modules], 'student module')
        self.teacher_rec = OutputRecorder(self.teacher, [logit_module, *t_feats], 'teacher module')
        if len(t_feats) != len(feature_modules):
            raise ValueError(f'{len(feature_modules)} student but {len(t_feats)} teacher feature modules')
        self._warned_loss = False
        self.connectors = nn.ModuleList(
            [nn.Conv2d(cs, ct, 1, bias=False) if cs != ct else nn.Identity() for cs, ct in connector_channels]
        ) if connector_channels else None

    def _make_pruner(self, model: nn.Module, cfg: Optional[dict], scores, greedy_scale) -> AMDPruner:
        cfg = dict(cfg or {})
        if 'input_shape' not in cfg:
            raise ValueError('AMDDistill needs pruner.input_shape (C, H, W) to measure FLOPs scales')
        pruner = AMDPruner(model, **cfg)
        if scores is None:
            if pruner.units[0].kind != 'channel':
                raise ValueError('transformer pruning needs gradient importance scores: run the importance stage '
                                 '(tools/amd/run.py) and set importance_file')
            greedy = greedy_scale if greedy_scale is not None else (min(self.scales) if self.scales else None)
            scores = pruner.l1_scores(model, greedy_scale=greedy)
        pruner.set_scores(scores)
        return pruner

    # ---------------------------------------------------------------------------------------------
    @property
    def student(self) -> nn.Module:
        return self.architecture

    def set_scale(self, scale: Optional[float]) -> None:
        """Mask the weight-shared student to candidate ``scale`` (None: unmasked) and swap its BN statistics."""
        if self.pruner is not None:
            self.pruner.apply(scale)
        if self.bn_bank is not None:
            self.bn_bank.switch(self.architecture, scale)

    def bn_stats(self) -> dict:
        """Per-candidate BN statistics (``{}`` without a bank), saved next to the student weights."""
        return self.bn_bank.export(self.architecture) if self.bn_bank is not None else {}

    def step_candidates(self, advance: bool = True) -> List[Optional[float]]:
        """The candidates of this step (``[None]`` for a fixed student); ``advance`` counts the step.

        Args:
            advance: increment :attr:`candidate_iter` (a training step); False draws nothing (all candidates).

        Returns:
            The scales to train, largest first (:func:`~mmkd_ext.amd.sampling.candidate_subset`).
        """
        if not self.scales:
            return [None]
        if not advance:
            return list(self.scales)
        self.candidate_iter += 1  # on the buffer's device: no wait for the GPU
        if self.candidates_per_step.get('mode', 'all') == 'all':  # nothing to draw: the counter is not read
            return list(self.scales)
        # a sampled subset is drawn on the host from (seed, iteration): one read of the counter per step
        iteration = int(self.candidate_iter) - 1
        return candidate_subset(self.scales, iteration, **self.candidates_per_step)

    def train(self, mode: bool = True) -> 'AMDDistill':
        super().train(mode)
        self.teacher.eval()  # frozen teacher, eval() mode (METHODS.md §0)
        return self

    def _teacher_outputs(self, inputs: Tensor) -> Tuple[Tensor, List[Tensor]]:
        with torch.no_grad():
            self.teacher(inputs, mode='tensor')
            out = self.teacher_rec.get()
        return out[0].detach(), [t.detach() for t in out[1:]]

    def candidate_losses(self, inputs: Tensor, data_samples, t_logits: Tensor, t_feats: List[Tensor]
                         ) -> Dict[str, Tensor]:
        """The three loss terms of the currently masked student (METHODS.md §1.5), weighted."""
        task = self.architecture(inputs, data_samples, mode='loss')
        ce = sum(v for k, v in task.items() if 'loss' in k and torch.is_tensor(v))
        out = self.student_rec.get()
        s_logits, s_feats = out[0], out[1:]
        if self.logit_loss == 'dkd':
            labels = torch.cat([d.gt_label.reshape(-1)[:1] for d in data_samples]).to(s_logits.device)
            kd = dkd(s_logits, t_logits, labels, **self.dkd_cfg)
        else:
            kd = logit_kd(s_logits, t_logits, self.tau)
        if self.connectors is not None:
            s_feats = [c(f) for c, f in zip(self.connectors, s_feats)]
        feat = feature_mimic(s_feats, t_feats).to(s_logits.device)
        return dict(loss_ce=self.ce_weight * ce, loss_logit=self.alpha * kd, loss_feat=self.beta * feat)

    def candidate_step(self, inputs: Tensor, data_samples, t_logits: Tensor, t_feats: List[Tensor]
                       ) -> Dict[str, Tensor]:
        """``forward(mode='candidate')``: the weighted loss terms of the currently masked student."""
        return self.candidate_losses(inputs, data_samples, t_logits, t_feats)

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor', **kwargs):
        """As :class:`BaseAlgorithm`, plus ``mode='candidate'`` (one candidate's loss terms, used by
        :meth:`train_step` so that a DDP wrapper sees every candidate's forward)."""
        if mode == 'candidate':
            return self.candidate_step(inputs, data_samples, **kwargs)
        return super().forward(inputs, data_samples, mode)

    def train_step(self, data: Union[dict, tuple, list], optim_wrapper: OptimWrapper,
                   wrapper: Optional[nn.Module] = None) -> Dict[str, Tensor]:
        """One step of supp. Algorithm 1: teacher once, each candidate of the step accumulates its gradient, one
        update (the candidates: :meth:`step_candidates`, all of them by default).

        Each candidate's graph is freed by its own backward. Under
        :class:`~mmkd_ext.amd.wrapper.AMDDistributedDataParallel` (``wrapper``) the candidates' forwards run
        through the wrapper, all but the last without gradient synchronisation.

        Args:
            data: a batch from the dataloader.
            optim_wrapper: the student's optimizer wrapper.
            wrapper: the DDP wrapper around this model, or None (single process).

        Returns:
            Log variables: ``loss_ce``, ``loss_logit``, ``loss_feat`` (means over the step's candidates) and ``loss``.
        """
        model = wrapper if wrapper is not None else self
        data = self.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        scales = self.step_candidates()
        log: Dict[str, Tensor] = {}
        with optim_wrapper.optim_context(model):  # autocast under AmpOptimWrapper, teacher included
            t_logits, t_feats = self._teacher_outputs(inputs)
            for i, scale in enumerate(scales):
                self.set_scale(scale)
                sync = wrapper.candidate_sync(i == len(scales) - 1) if wrapper is not None else nullcontext()
                with sync:
                    terms = model(inputs, samples, mode='candidate', t_logits=t_logits, t_feats=t_feats)
                    loss = sum(terms.values()) / len(scales)
                    optim_wrapper.backward(loss)
                for k, v in terms.items():
                    log[k] = log.get(k, 0) + v.detach() / len(scales)
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        self.set_scale(None)  # store the last candidate's BN statistics in the bank
        log['loss'] = sum(log.values())
        return log

    def loss(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Mean of the step's candidates' losses (for ``mode='loss'``; training uses :meth:`train_step`).

        All m candidate graphs stay alive until the caller's backward; a DDP wrapper that calls this in
        training (MMEngine's ``MMDistributedDataParallel``) is warned about once.
        """
        if self.training and torch.is_grad_enabled() and is_distributed() and not self._warned_loss:
            self._warned_loss = True
            print_log("AMDDistill.loss() keeps every candidate's graph until one backward (m x the activation "
                      "memory) because the DDP wrapper skips AMDDistill.train_step; set model_wrapper_cfg="
                      "dict(type='AMDDistributedDataParallel') to free each candidate's graph with its own "
                      'backward', logger='current', level=logging.WARNING)
        t_logits, t_feats = self._teacher_outputs(inputs)
        total: Dict[str, Tensor] = {}
        scales = self.step_candidates(advance=self.training and torch.is_grad_enabled())
        for scale in scales:
            self.set_scale(scale)
            for k, v in self.candidate_losses(inputs, data_samples, t_logits, t_feats).items():
                total[k] = total.get(k, 0) + v / len(scales)
        self.set_scale(None)
        return total
