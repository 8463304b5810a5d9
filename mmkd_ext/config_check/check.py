"""The check of one config: the stages of its run plan (:func:`mmkd_ext.run_plans.plan_for`), each shortened."""
from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmengine.config import Config

from ..config_rules import apply_config_rules
from ..demo_data.standin import STANDIN_BASE
from ..launch import enable_amp
from ..run_plans import Plan, plan_for
from ..weight_sources import replace_unavailable_weights
from .rewrite import (
    add_extra_hooks,
    name_visualizer_uniquely,
    point_at_standin_data,
    quiet_loaders,
    zero_score_thresholds,
)
from .shorten import (
    HELD_OUT_EVERY,
    extend_schedule,
    limit_evaluation_images,
    limit_train_iterations,
    one_short_schedule,
    shorten_held_out_split,
    with_indices,
)
from .shrink import shrink
from .steps import (
    ROOT,
    CheckReport,
    ConfigCheckFailed,
    checkpoint_files,
    last_checkpoint,
    metrics_note,
    run_tool,
    shown,
    step,
)


class ConfigCheck:
    """The check of one config (see :mod:`mmkd_ext.config_check`); implements the stages' ``StageContext``.

    Args:
        config: path of the config file.
        work_dir: where runs, checkpoints and generated files go.
        device: ``cpu`` or ``cuda``.
        iters: training iterations of the short schedule.
        shrink_inputs: apply :func:`shrink`.
        standin_base: root of the stand-in datasets.
        cfg_options: extra ``--cfg-options`` applied after loading.
        log: where the step lines go.
        train_only: stop a training config's check after the train step (build + N iterations).
        keep_checkpoints: keep the checkpoints the check wrote. By default they are deleted when the check ends
            (passed or failed): they hold random or stand-in weights, and a detection or AMD check writes several
            GB of them (a run over every config would fill a disk).
        extra_hooks: hook configs appended to ``custom_hooks`` of every config a stage builds (and so of the
            configs the tools build from them: pipeline stages, search proxies), e.g. a device-check hook.
        teacher_ckpt: a teacher checkpoint for every config whose model names one (``model.teacher_ckpt``) and for
            the stages that place it themselves (label generation); None: the configs' own (random if missing).
        amp: train with ``AmpOptimWrapper`` (``tools/train.py --amp``; needs a GPU).
    """

    held_out_every = HELD_OUT_EVERY
    configs_root = osp.join(ROOT, 'configs')

    def __init__(self, config: str, work_dir: str, device: str = 'cpu', iters: int = 2, shrink_inputs: bool = False,
                 standin_base: str = STANDIN_BASE, cfg_options: Optional[dict] = None,
                 log: Callable[[str], None] = print, train_only: bool = False, keep_checkpoints: bool = False,
                 extra_hooks: Sequence[dict] = (), teacher_ckpt: Optional[str] = None, amp: bool = False):
        self.config = config if '::' in config else osp.abspath(config)
        self.work_dir = osp.abspath(work_dir)
        self.device = device
        self.iters = iters
        self.shrink_inputs = shrink_inputs
        self.standin_base = standin_base
        self.cfg_options = cfg_options or {}
        self.log = log
        self.train_only = train_only
        self.keep_checkpoints = keep_checkpoints
        self.extra_hooks = [dict(h) for h in extra_hooks]
        self.teacher_ckpt = osp.abspath(teacher_ckpt) if teacher_ckpt else None
        self.amp = amp
        self.report = CheckReport(config)

    # ---- services of the stages (run_plans.StageContext)
    def settings(self) -> tuple:
        """What besides a config decides what a stage makes of it (stages reuse outputs made with the same)."""
        return (self.shrink_inputs, self.iters, self.standin_base, self.device, self.teacher_ckpt, self.amp,
                repr(self.extra_hooks), repr(sorted(self.cfg_options.items())))

    def prepare(self, path: str, sub_dir: str = '') -> Config:
        """Load ``path`` and apply data redirection, weight replacement, shrinking, the work dir and extra hooks."""
        cfg = Config.fromfile(path)
        if self.cfg_options:
            cfg.merge_from_dict(self.cfg_options)
        apply_config_rules(cfg)
        notes = [f'data: {", ".join(point_at_standin_data(cfg, self.standin_base)) or "none"}']
        if self.teacher_ckpt and isinstance(cfg.get('model'), dict) and 'teacher_ckpt' in cfg.model:
            cfg.model.teacher_ckpt = self.teacher_ckpt
        self.report.replaced_weights += [f'{osp.basename(path)}: {line}' for line in replace_unavailable_weights(cfg)]
        if self.shrink_inputs:
            notes.append(shrink(cfg))
        quiet_loaders(cfg)
        if zero_score_thresholds(cfg.get('model')):
            notes.append('detector score_thr 0 (random weights score below it)')
        if self.amp and 'optim_wrapper' in cfg:
            enable_amp(cfg)
        add_extra_hooks(cfg, self.extra_hooks)
        cfg.work_dir = osp.join(self.work_dir, sub_dir) if sub_dir else self.work_dir
        cfg.launcher = 'none'
        name_visualizer_uniquely(cfg)
        if self.device == 'cpu':
            cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        self.log(f'[check] prepared {shown(path)}: '
                 + '; '.join(notes))
        return cfg

    def dump(self, cfg: Config, name: str) -> str:
        """Write ``cfg`` as ``name`` into its work dir; returns the path."""
        os.makedirs(cfg.work_dir, exist_ok=True)
        path = osp.join(cfg.work_dir, name)
        cfg.dump(path)
        return path

    def step(self, name: str):
        """A timed step recorded in the report (a context manager yielding its record)."""
        return step(self.report, name, self.device, self.log)

    @staticmethod
    def run_tool(script: str, argv: List[str]) -> Any:
        """Run ``script``'s ``main(argv)`` in this process."""
        return run_tool(script, argv)

    def limit_train_iterations(self, cfg: Config) -> str:
        return limit_train_iterations(cfg, self.iters)

    @staticmethod
    def limit_evaluation_images(cfg: Config) -> None:
        limit_evaluation_images(cfg)

    @staticmethod
    def with_indices(dataset: dict, count: int) -> dict:
        return with_indices(dataset, count)

    def one_short_schedule(self, train_cfg: dict) -> None:
        one_short_schedule(train_cfg, self.iters)

    @staticmethod
    def hold_out(cfg: Config) -> bool:
        return shorten_held_out_split(cfg)

    # ---- the work dir
    def fresh_work_dir(self) -> None:
        """Start from an empty work dir: wipe one a previous check made (marker file), refuse any other."""
        marker = osp.join(self.work_dir, '.config_check')
        if osp.isdir(self.work_dir) and os.listdir(self.work_dir):
            if not osp.isfile(marker):
                raise FileExistsError(f'work dir {self.work_dir} is not empty and was not made by the config check; '
                                      'pass an empty or new --work-dir')
            shutil.rmtree(self.work_dir)
        os.makedirs(self.work_dir, exist_ok=True)
        open(marker, 'w').close()

    def delete_checkpoints(self) -> None:
        """Delete every checkpoint file (``*.pth``) the check wrote under its work dir, and say how much."""
        paths = checkpoint_files(self.work_dir)
        size = sum(osp.getsize(path) for path in paths)
        for path in paths:
            os.remove(path)
        if paths:
            self.log(f'[check] deleted {len(paths)} checkpoint file(s) of the check ({size / 1e9:.2f} GB); '
                     'keep_checkpoints=True (--keep-checkpoints) keeps them')

    # ---- the plan
    def plan(self) -> Plan:
        """The run plan of the checked config."""
        return plan_for(Config.fromfile(self.config))

    def run(self) -> CheckReport:
        """Run every stage of the config's plan; returns the report (raises :class:`ConfigCheckFailed`)."""
        self.fresh_work_dir()
        plan = self.plan()
        self.log(f'[check] {shown(self.config)}: {plan.name} job ({plan.describe()}), device {self.device}, '
                 f'{self.iters} iterations{", shrunk" if self.shrink_inputs else ""}')
        try:
            self.run_stages(plan)
        finally:
            if not self.keep_checkpoints:
                self.delete_checkpoints()
        for line in self.report.replaced_weights:
            self.log(f'[check] {line}')
        self.log(f'[check] all steps passed in {self.report.seconds:.1f} s')
        return self.report

    def run_stages(self, plan: Plan) -> Dict[str, Any]:
        """Each stage on the outputs of the ones before; a stage that misses a state of its ``reaches`` fails
        (``train_only`` checks train too briefly to reach them)."""
        outputs: Dict[str, Any] = {}
        for stage in plan.stages:
            try:
                produced = stage.run(self, dict(outputs))
            except ConfigCheckFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - a failure outside a step names its stage
                raise ConfigCheckFailed(stage.name, f'{type(exc).__name__}: {exc}') from exc
            missing = [s for s in stage.reaches if s not in produced.get('reached', ())]
            if missing and not self.train_only:
                raise ConfigCheckFailed(stage.name, f'the {stage.name} stage of the {plan.name} plan did not reach '
                                                    f'{missing} (reached {produced.get("reached", [])})')
            outputs.update(produced)
        return outputs

    # ---- a training config (the generic stage the plans use)
    def check_train(self, path: Optional[str] = None, sub_dir: str = '', prepare: Optional[Callable] = None,
                    after_train: Optional[Callable] = None) -> str:
        """build -> train -> val -> checkpoint -> resume -> test; returns the last checkpoint path.

        With ``train_only`` it stops after the train step (returns the checkpoint training wrote).
        """
        from mmengine.runner import Runner

        path = path or self.config
        with self.step('build') as rec:
            cfg = self.prepare(path, sub_dir)
            if prepare is not None:
                prepare(cfg)
            rec.note = limit_train_iterations(cfg, self.iters)
            cfg.train_cfg.val_interval = 10**9  # validation is its own step below
            by_epoch = 'max_epochs' in cfg.train_cfg
            end = cfg.train_cfg.max_epochs if by_epoch else cfg.train_cfg.max_iters
            cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=by_epoch, interval=end,
                                                max_keep_ckpts=2, save_best=None)
            dumped = self.dump(cfg, 'checked_config.py')
            runner = Runner.from_cfg(cfg)
        with self.step('train') as rec:
            runner.train()
            rec.note = f'{runner.iter} iterations'
        if self.train_only:  # the checkpoint training wrote ('' when the config's hooks wrote none)
            return last_checkpoint(cfg.work_dir) if osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')) else ''
        with self.step('val') as rec:
            rec.note = metrics_note(runner.val(), runner)
        with self.step('checkpoint') as rec:
            ckpt = last_checkpoint(cfg.work_dir)
            rec.note = f'{osp.basename(ckpt)} {osp.getsize(ckpt) / 2**20:.1f} MB'
        trained = runner.iter
        if after_train is not None:
            after_train(cfg, ckpt)
        del runner
        with self.step('resume') as rec:
            cfg = Config.fromfile(dumped)
            extend_schedule(cfg)
            cfg.resume, cfg.load_from = True, None  # --resume: the work dir's last checkpoint
            runner = Runner.from_cfg(cfg)
            runner.train()
            if runner.iter <= trained:
                raise RuntimeError(f'resume trained nothing: iteration {runner.iter} after {trained} before')
            rec.note = f'resumed at iteration {trained}, trained to {runner.iter}'
            del runner
        with self.step('test') as rec:
            metrics = run_tool('tools/test.py', [dumped, ckpt, '--work-dir', osp.join(cfg.work_dir, 'test')])
            rec.note = metrics_note(metrics)
        return last_checkpoint(cfg.work_dir)


def check_config(config: str, work_dir: Optional[str] = None, **kwargs) -> CheckReport:
    """Run :class:`ConfigCheck` on ``config`` (``work_dir`` default: ``work_dirs/check/<config name>``)."""
    name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
    work_dir = work_dir or osp.join('work_dirs', 'check', name)
    return ConfigCheck(config, work_dir, **kwargs).run()
