"""The AMD chain teacher -> TA -> student as resumable stages (supp. Algorithm 1, METHODS.md §1.5-1.7).

Stages (each writes its outputs under ``work_dir/<stage>/`` and is recorded in ``work_dir/amd_state.json``
only when it finished, so a killed run restarts at the stage it was in; training stages resume from
their last MMEngine checkpoint):

1. ``importance``: rank the teacher's structures (supp. Eq. 3 gradients, or filter L1 norms for CNNs).
2. ``joint_i`` (i = 1..numTA): joint optimisation of all candidates with scale <= the current teacher's.
3. ``select_i``: validation accuracy per candidate, NPSD, selection rule, PNG plot.
4. ``final``: the last iteration of Algorithm 1 (teacher = selected TA, target included), or a fixed
   student distilled from the TA (supp. Table 7).
5. ``export``: selected TA and final student as physically smaller models with configs.

The AMD config is an ordinary MMEngine config whose ``model`` is an :class:`AMDDistill` and whose
``amd`` dict holds the chain settings (see ``configs/amd/``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import barrier
from mmengine.runner import Runner

from ..compat.checkpoint import load_checkpoint_file
from ..extraction import resolve_model_cfg
from ..held_out import HELD_OUT_EVERY, held_out_dataloaders
from ..launch import select_device
from ..registry import MODELS
from ..weights import load_weights
from .bn_stats import load_bn_stats
from .distributed import on_main_process, save_on_main_process, start_process_group
from .flops import candidate_scales, example_inputs, measure_flops
from .importance import estimate_importance, task_loss_per_sample
from .loops import candidate_accuracies, scale_key
from .pruner import AMDPruner, load_scores
from .selection import check_split, npsd, plot_selection, select

AMD_DEFAULTS = dict(
    student_scale=0.15,  # [P] ViT-Base_15% (Tables 1, 2, 5)
    num_candidates=9,  # [P] m = 9 (Table 5)
    num_ta=1,  # [P] Algorithm 1 default
    importance=dict(criterion='gradient', granularity='sample', max_samples=2048, l1_greedy=True),
    # split: 'held_out' ([R] default) selects on 1 in `held_out_every` training images, held out of the joint
    # training (mmkd_ext/held_out.py); 'val' selects on val_dataloader, the split the result is reported on
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1', metric_scale=0.01,
                   split='held_out', held_out_every=HELD_OUT_EVERY),
    final_student=None,  # None: the target-scale sub-network (ViT); a model config: fixed student (Table 7)
    final_feature_modules=None,
    final_connector_channels=None,
    joint_train_cfg=dict(),
    final_train_cfg=dict(),
    teacher_accuracy=None,
    # [R] candidates validated on val_dataloader (the reported split) after a stage trains (issue 26): 'target' the
    # target student only (what the chain reports), 'all' every candidate (m passes over the validation split per
    # stage, a cost that grows with m however few candidates a step trains). The selection's held-out pass always
    # validates every candidate; with selection.split='val' the joint stage validates every candidate on val.
    val_report='target',
)
VAL_REPORTS = ('target', 'all')


def amd_settings(cfg: Config) -> dict:
    """``cfg.amd`` merged over :data:`AMD_DEFAULTS` (nested dicts merged one level deep)."""
    out = copy.deepcopy(AMD_DEFAULTS)
    for k, v in dict(cfg.get('amd', {})).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    unknown = set(out) - set(AMD_DEFAULTS)
    if unknown:
        raise KeyError(f'unknown amd settings {sorted(unknown)}; known: {sorted(AMD_DEFAULTS)}')
    if out['val_report'] not in VAL_REPORTS:
        raise ValueError(f"amd.val_report={out['val_report']!r}: expected one of {VAL_REPORTS}")
    return out


class StageState:
    """``amd_state.json``: finished stages and their outputs (written atomically)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data: Dict[str, dict] = {}
        if osp.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def done(self, stage: str) -> bool:
        return stage in self.data

    def record(self, stage: str, outputs: dict) -> None:
        """Record ``stage`` as finished (every rank's copy; the file is written by rank 0)."""
        self.data[stage] = outputs
        on_main_process(write_json, self.path, self.data)


def write_json(path: str, data: dict) -> str:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
    return path


INPUTS_FILE = 'amd_inputs.json'  # what the finished stages of a work dir were computed from


def chain_inputs(cfg: Config) -> Dict[str, str]:
    """sha256 of what the stages depend on: the ``model`` and ``amd`` settings and the teacher checkpoint file.

    The schedule lengths (``amd.joint_train_cfg``, ``amd.final_train_cfg``) are left out: a resumed training
    stage may be extended, as with MMEngine's ``--resume``; so is the teacher checkpoint's path (its content
    counts).

    Args:
        cfg: the AMD config as loaded (before any stage fills in run-time paths).

    Returns:
        ``{'settings': sha256, 'teacher checkpoint': sha256 or 'none'}``.
    """
    amd = {k: v for k, v in (cfg.get('amd', {}) or {}).items() if k not in ('joint_train_cfg', 'final_train_cfg')}
    model = {k: v for k, v in cfg.model.to_dict().items() if k != 'teacher_ckpt'}  # its content is hashed below
    settings = json.dumps(dict(model=model, amd=amd), sort_keys=True, default=str)
    ckpt = cfg.model.get('teacher_ckpt')
    digest = 'none'
    if ckpt and osp.isfile(ckpt):
        with open(ckpt, 'rb') as f:
            digest = hashlib.file_digest(f, 'sha256').hexdigest()
    return {'settings': hashlib.sha256(settings.encode()).hexdigest(), 'teacher checkpoint': digest}


def read_chain_inputs(work_dir: str) -> Optional[Dict[str, str]]:
    """The :func:`chain_inputs` recorded in ``work_dir`` (None when there are none)."""
    path = osp.join(work_dir, INPUTS_FILE)
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class AMDPipeline:
    """Run the AMD stages of one config.

    Args:
        cfg: the AMD config (``model`` = AMDDistill, ``amd`` = chain settings).
        work_dir: root of all stage outputs.
        log: a ``print``-like callable for progress lines.
    """

    def __init__(self, cfg: Config, work_dir: str, log: Callable[[str], None] = print) -> None:
        if cfg.model.get('type') not in ('AMDDistill', 'mmrazor.AMDDistill'):
            raise ValueError(f"an AMD config needs model.type='AMDDistill', got {cfg.model.get('type')!r}")
        self.cfg, self.work_dir, self.log = cfg, work_dir, log
        self.amd = amd_settings(cfg)
        check_split(self.amd['selection']['split'])
        self.scales = candidate_scales(self.amd['student_scale'], self.amd['num_candidates'])
        self.target = self.scales[-1]
        start_process_group(cfg)
        os.makedirs(work_dir, exist_ok=True)
        self.state = StageState(osp.join(work_dir, 'amd_state.json'))
        self.inputs = chain_inputs(cfg)
        barrier()  # every rank has read the state before rank 0 may write it

    # orchestration ------------------------------------------------------------------------------
    def reuse(self, other: 'AMDPipeline', stages: Sequence[str]) -> None:
        """Mark ``stages`` done with the outputs of ``other`` (another work dir of the same chain).

        Used to re-run only the later stages with another seed, e.g. the final distillation reusing the
        importance scores, the joint network and the selection of a first run.

        Args:
            other: a pipeline whose ``stages`` finished.
            stages: stage names (see :meth:`stage_names`).
        """
        names = self.stage_names()
        for name in stages:
            if name not in names:
                raise ValueError(f'unknown stage {name!r}; stages are {names}')
            if not other.state.done(name):
                raise ValueError(f'stage {name!r} has not finished in {other.work_dir}; nothing to reuse')
            self.state.record(name, dict(other.state.data[name], reused_from=other.work_dir))

    def stage_names(self) -> List[str]:
        names = ['importance']
        for i in range(1, self.amd['num_ta'] + 1):
            names += [f'joint_{i}', f'select_{i}']
        return names + ['final', 'export']

    def run(self, until: Optional[str] = None) -> dict:
        """Run every unfinished stage in order (up to and including ``until``); returns the state."""
        names = self.stage_names()
        if until is not None and until not in names:
            raise ValueError(f'unknown stage {until!r}; stages are {names}')
        self._check_inputs()
        for name in names:
            if self.state.done(name):
                self.log(f'[amd] stage {name}: done before, skipped')
            else:
                start = time.perf_counter()
                self.log(f'[amd] stage {name}: running')
                outputs = self._run_stage(name)
                outputs['wall_s'] = time.perf_counter() - start
                self.state.record(name, outputs)
            if name == until:
                break
        return self.state.data

    @property
    def inputs_path(self) -> str:
        return osp.join(self.work_dir, INPUTS_FILE)

    def _check_inputs(self) -> None:
        """Refuse to resume stages that were computed from other settings or another teacher checkpoint."""
        saved = read_chain_inputs(self.work_dir)
        if saved is None or not any(self.state.done(n) for n in self.stage_names()):
            on_main_process(write_json, self.inputs_path, self.inputs)
            return
        changed = sorted(k for k in set(saved) | set(self.inputs) if saved.get(k) != self.inputs.get(k))
        if changed:
            raise ValueError(
                f'{self.state.path} holds AMD stages computed with other {" and ".join(changed)} than this run '
                f'(sha256 in {self.inputs_path}: {[saved.get(k, "none")[:12] for k in changed]}, now '
                f'{[self.inputs.get(k, "none")[:12] for k in changed]}); resuming would mix them. Use another '
                '--work-dir, or delete that work dir to start over (only the schedule lengths in '
                'amd.joint_train_cfg / amd.final_train_cfg may change between resumed runs).')

    def _run_stage(self, name: str) -> dict:
        if name == 'importance':
            return self.stage_importance()
        kind, _, idx = name.partition('_')
        if kind == 'joint':
            return self.stage_joint(int(idx))
        if kind == 'select':
            return self.stage_select(int(idx))
        if name == 'final':
            return self.stage_final()
        return self.stage_export()

    # helpers ------------------------------------------------------------------------------------
    def _dir(self, stage: str) -> str:
        path = osp.join(self.work_dir, stage)
        os.makedirs(path, exist_ok=True)
        return path

    def _pruner_cfg(self) -> dict:
        return dict(self.cfg.model.get('pruner') or {})

    def _build(self, model_cfg: dict, ckpt: Optional[str]) -> torch.nn.Module:
        model = MODELS.build(resolve_model_cfg(model_cfg))
        if ckpt:
            load_weights(model, ckpt, self.cfg.model.get('teacher_ckpt_strict', True))
        return model

    def _current_teacher(self, iteration: int) -> tuple:
        """(teacher scale, weights of the weight-shared network) entering ``iteration``."""
        if iteration == 1:
            return 1.0, self.cfg.model.teacher_ckpt
        prev = self.state.data[f'select_{iteration - 1}']
        return prev['selected_scale'], self.state.data[f'joint_{iteration - 1}']['student']

    def _report_scales(self) -> Optional[List[float]]:
        """The candidates a stage validates on ``val_dataloader`` for the report (None: every candidate)."""
        return [self.target] if self.amd['val_report'] == 'target' else None

    def _train(self, stage: str, model_updates: dict, train_cfg: dict, held_out: bool = False,
               report_scales: Optional[List[float]] = None) -> tuple:
        """Train the AMDDistill config with ``model_updates`` in ``work_dir/stage``; resumes a killed run.

        With ``held_out``, the held-out training images are left out of training and validated on instead (every
        candidate: the selection); their metrics come back as ``held_out/<metric>``, next to the metrics of
        ``val_dataloader``. ``report_scales``: the candidates validated on ``val_dataloader`` (None: every one).
        """
        cfg = copy.deepcopy(self.cfg)
        candidates_loop = 'AMDCandidatesValLoop' in str(cfg.val_cfg.get('type'))
        if report_scales is not None and candidates_loop and not held_out:
            cfg.val_cfg.scales = list(report_scales)
        if held_out:
            every = self.amd['selection']['held_out_every']
            cfg.train_dataloader, cfg.val_dataloader = held_out_dataloaders(cfg.train_dataloader, cfg.val_dataloader,
                                                                            every)
        for key, value in model_updates.items():  # replace, do not merge (ConfigDict.update merges dicts)
            cfg.model[key] = copy.deepcopy(value)
        cfg.pop('amd', None)
        cfg.work_dir = self._dir(stage)
        cfg.train_cfg.update(train_cfg)
        cfg.experiment_name = f'amd_{stage}_{time.time_ns()}'
        if osp.exists(osp.join(cfg.work_dir, 'last_checkpoint')):
            cfg.resume, cfg.load_from = True, None
            self.log(f'[amd] stage {stage}: resuming from the last checkpoint')
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = {k[4:]: float(v.current()) for k, v in runner.message_hub.log_scalars.items()
                   if k.startswith('val/')}
        if not metrics:  # killed after the last epoch's checkpoint: nothing was validated in this process
            metrics = {k: float(v) for k, v in runner.val_loop.run().items()}
        if held_out:  # the run validated on the held-out images; report val_dataloader's metrics as well
            val_cfg = dict(self.cfg.val_cfg, dataloader=copy.deepcopy(self.cfg.val_dataloader),
                           evaluator=copy.deepcopy(self.cfg.val_evaluator))
            if candidates_loop:  # keep the BN statistics the selection used
                val_cfg['bn_recalibration_batches'] = 0
                if report_scales is not None:
                    val_cfg['scales'] = list(report_scales)
            loop = runner.build_val_loop(val_cfg)
            metrics = {**{f'held_out/{k}': v for k, v in metrics.items()},
                       **{k: float(v) for k, v in loop.run().items()}}
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        student = osp.join(cfg.work_dir, 'student.pth')
        save_on_main_process({'state_dict': model.architecture.state_dict(), 'bn_stats': model.bn_stats()}, student)
        return metrics, student

    # stages -------------------------------------------------------------------------------------
    def stage_importance(self) -> dict:
        """Importance scores of the teacher's units (supp. Eq. 3) or filter L1 norms (Li et al.)."""
        imp = self.amd['importance']
        # this rank's GPU (cuda:LOCAL_RANK; CPU without one): no Runner has moved anything yet (issue 23)
        teacher = self._build(self.cfg.model.teacher, self.cfg.model.teacher_ckpt).to(select_device())
        pruner = AMDPruner(teacher, **self._pruner_cfg())
        if imp['criterion'] == 'l1':
            scores = pruner.l1_scores(teacher, greedy_scale=self.target if imp['l1_greedy'] else None)
        elif imp['criterion'] == 'gradient':
            loader = Runner.build_dataloader(copy.deepcopy(imp.get('dataloader') or self.cfg.train_dataloader))
            teacher.train()  # [R] train() mode (METHODS.md §1.3)
            scores = estimate_importance(
                pruner.masks, loader, lambda b: task_loss_per_sample(teacher, teacher.data_preprocessor(b, False)),
                imp['granularity'], imp['max_samples'])
        else:
            raise ValueError(f"amd.importance.criterion must be 'gradient' or 'l1', got {imp['criterion']!r}")
        pruner.set_scores(scores)
        if not pruner.check_nested(self.scales):
            raise RuntimeError('candidate masks are not nested; this is a bug in the ranking')
        path = osp.join(self._dir('importance'), 'scores.pth')
        save_on_main_process({'scores': scores, 'scope': pruner.scope}, path)
        reached = {scale_key(s): pruner.solve(s).scale for s in self.scales}
        return dict(scores=path, reached_scales=reached, teacher_flops=pruner.cost.total)

    def stage_joint(self, iteration: int) -> dict:
        """Joint optimisation of the candidates <= the current teacher's scale (supp. Algorithm 1)."""
        t_scale, weights = self._current_teacher(iteration)
        if iteration > 1 and t_scale <= self.target + 1e-9:  # the chain already reached the student
            return dict(self.state.data[f'joint_{iteration - 1}'], skipped=True)
        scales = [s for s in self.scales if s < t_scale - 1e-9] or [self.target]
        updates = dict(scales=scales, teacher_scale=t_scale, teacher_ckpt=weights, student_ckpt=weights,
                       importance_file=self.state.data['importance']['scores'])
        held_out = self.amd['selection']['split'] == 'held_out'
        metrics, student = self._train(f'joint_{iteration}', updates, dict(self.amd['joint_train_cfg']), held_out,
                                       self._report_scales() if held_out else None)
        selection = {k[len('held_out/'):]: v for k, v in metrics.items() if k.startswith('held_out/')}
        return dict(scales=scales, teacher_scale=t_scale, student=student,
                    metrics={k: v for k, v in metrics.items() if not k.startswith('held_out/')},
                    selection_metrics=selection if held_out else metrics)

    def stage_select(self, iteration: int) -> dict:
        """Per-candidate accuracy, NPSD and the selection rule; a PNG plot with the chosen TA."""
        sel = self.amd['selection']
        joint = self.state.data[f'joint_{iteration}']
        if joint.get('skipped'):
            return dict(self.state.data[f'select_{iteration - 1}'], skipped=True)
        scales = joint['scales']
        selection_metrics = joint.get('selection_metrics', joint['metrics'])
        acc = [a * sel['metric_scale'] for a in candidate_accuracies(selection_metrics, scales, sel['metric'])]
        student_acc = None
        if sel['rule'] == 'oracle':
            student_acc = [self._oracle_student(iteration, s) for s in scales]
        k = select(sel['rule'], scales, acc, sel['lam'], sel['npsd_threshold'], student_acc, self.target)
        teacher_acc = self.amd['teacher_accuracy']
        png = on_main_process(plot_selection, osp.join(self._dir(f'select_{iteration}'), 'selection.png'), scales,
                              acc, k, teacher_acc * sel['metric_scale'] if teacher_acc is not None else None,
                              title=f'AMD iteration {iteration}: {sel["rule"]}')
        out = dict(scales=scales, accuracies=acc, npsd=npsd(scales, acc) if len(scales) > 1 else [],
                   selected_index=k, selected_scale=scales[k], rule=sel['rule'], split=sel['split'], plot=png)
        if student_acc is not None:
            out['oracle_student_accuracies'] = student_acc
        on_main_process(write_json, osp.join(self._dir(f'select_{iteration}'), 'selection.json'), out)
        self.log(f'[amd] selected TA scale {scales[k]:.3f} (accuracy {acc[k]:.4f}) by {sel["rule"]}')
        return out

    def _final_updates(self, ta_scale: float, weights: str) -> dict:
        """AMDDistill settings of the last chain iteration for a TA of ``ta_scale``."""
        updates = dict(teacher_scale=ta_scale, teacher_ckpt=weights,
                       importance_file=self.state.data['importance']['scores'])
        if self.amd['final_student'] is None:
            updates.update(scales=[s for s in self.scales if s <= ta_scale + 1e-9], student_ckpt=weights)
        else:  # fixed hand-designed student (supp. Table 7, METHODS.md §1.9 [R])
            updates.update(architecture=self.amd['final_student'], scales=None, student_ckpt=None)
            if self.amd['final_feature_modules'] is not None:
                updates.update(feature_modules=self.amd['final_feature_modules'],
                               teacher_feature_modules=self.cfg.model.get('feature_modules', ()))
            if self.amd['final_connector_channels'] is not None:
                updates['connector_channels'] = self.amd['final_connector_channels']
        return updates

    def _final_report(self) -> Optional[List[float]]:
        """Candidates the final stage validates: the target student (a fixed student has no candidates)."""
        return self._report_scales() if self.amd['final_student'] is None else None

    def _oracle_student(self, iteration: int, ta_scale: float) -> float:
        """Manual selection baseline (supp. §4): distil the student from candidate ``ta_scale``."""
        joint = self.state.data[f'joint_{iteration}']
        stage = f'oracle_{iteration}_{scale_key(ta_scale)}'
        if not self.state.done(stage):
            metrics, student = self._train(stage, self._final_updates(ta_scale, joint['student']),
                                           dict(self.amd['final_train_cfg']), report_scales=self._final_report())
            self.state.record(stage, dict(metrics=metrics, student=student))
        return self._student_accuracy(self.state.data[stage]['metrics']) * self.amd['selection']['metric_scale']

    def _student_accuracy(self, metrics: dict) -> float:
        metric = self.amd['selection']['metric']
        key = f'{scale_key(self.target)}/{metric}'
        return float(metrics[key] if key in metrics and self.amd['final_student'] is None else metrics[metric])

    def stage_final(self) -> dict:
        """Last iteration of Algorithm 1: the TA teaches; the target (or fixed) student is trained."""
        n = self.amd['num_ta']
        ta_scale = self.state.data[f'select_{n}']['selected_scale']
        weights = self.state.data[f'joint_{n}']['student']
        if ta_scale <= self.target + 1e-9 and self.amd['final_student'] is None:
            self.log('[amd] the target itself was selected: the joint network already holds the student')
            metrics = self.state.data[f'joint_{n}']['metrics']
            return dict(metrics=metrics, student=weights, student_accuracy=self._student_accuracy(metrics),
                        ta_scale=ta_scale, trained=False)
        oracle = self.state.data.get(f'oracle_{n}_{scale_key(ta_scale)}')
        if oracle is not None:  # the oracle already distilled the student from this TA
            metrics, student = oracle['metrics'], oracle['student']
        else:
            metrics, student = self._train('final', self._final_updates(ta_scale, weights),
                                           dict(self.amd['final_train_cfg']), report_scales=self._final_report())
        return dict(metrics=metrics, student=student, student_accuracy=self._student_accuracy(metrics),
                    ta_scale=ta_scale, trained=True)

    def stage_export(self) -> dict:
        """Export the selected TA and the final student as physically pruned standard models (rank 0)."""
        return on_main_process(self._export)

    def _export(self) -> dict:
        from .export import export_pruned
        n = self.amd['num_ta']
        out_dir = self._dir('export')
        arch_cfg = resolve_model_cfg(self.cfg.model.architecture)
        scores = load_scores(self.state.data['importance']['scores'])
        extra = self._export_extra()
        result = {}
        jobs = [('ta', self.state.data[f'joint_{n}']['student'], self.state.data[f'select_{n}']['selected_scale'])]
        if self.amd['final_student'] is None:
            jobs.append(('student', self.state.data['final']['student'], self.target))
        for name, weights, scale in jobs:
            model = self._build(arch_cfg, weights)
            load_bn_stats(model, load_checkpoint_file(weights, map_location='cpu').get('bn_stats', {}), scale)
            pruner = AMDPruner(model, **self._pruner_cfg())
            pruner.set_scores(scores)
            widths = pruner.densify(model, scale)
            analyzer = measure_flops(model, example_inputs(self._pruner_cfg()['input_shape']))
            flops = analyzer.total()
            scope = self._pruner_cfg().get('flops_scope', '')  # scales are FLOPs ratios of this sub-module
            scope_flops = analyzer.total(scope) if scope else flops  # (the backbone for segmentation, Table 8 [R])
            params = sum(p.numel() for p in model.parameters())
            files = export_pruned(model, arch_cfg, widths, out_dir, name,
                                  self._pruner_cfg().get('ffn_granularity', 'neuron'), extra)
            result[name] = dict(files, scale=scale, flops=int(flops), scope_flops=int(scope_flops),
                                params=int(params), measured_scale=float(scope_flops) / pruner.reference_flops)
        if self.amd['final_student'] is not None:
            model = self._build(self.amd['final_student'], self.state.data['final']['student'])
            path = osp.join(out_dir, 'student.pth')
            torch.save({'state_dict': model.state_dict()}, path)
            config = osp.join(out_dir, 'student.py')  # the given student's own config, so tools/test.py runs it
            Config(dict(model=resolve_model_cfg(self.amd['final_student']), load_from=osp.abspath(path),
                        **extra)).dump(config)
            result['student'] = dict(checkpoint=path, config=config,
                                     params=int(sum(p.numel() for p in model.parameters())))
        return result

    def _export_extra(self) -> dict:
        """Data, evaluation and runtime settings an exported config needs to be tested on its own."""
        keys = ('val_dataloader', 'val_evaluator', 'test_dataloader', 'test_evaluator', 'env_cfg')
        extra = {k: copy.deepcopy(self.cfg[k]) for k in keys if k in self.cfg}
        scope = resolve_model_cfg(self.cfg.model.architecture).get('_scope_', 'mmpretrain')
        extra.update(default_scope=scope, val_cfg=dict(), test_cfg=dict(),
                     custom_imports=dict(imports=['mmkd_ext'], allow_failed_imports=False))
        return extra
