"""Run plans: how a config runs, stage by stage, registered by the method rooms (STYLE: "Tools that ask the rooms").

Each method room registers one :class:`Plan` in its ``plan.py`` (``mmkd_ext/fkd/plan.py``: labels -> training,
``kd_zero/plan.py``: search -> best-distiller training, ``amd/plan.py``: the pipeline's stages -> test,
``acmkd/plan.py``: training -> export). A config no room claims runs :data:`TRAINING_PLAN` (build, train, val,
checkpoint, resume, test). The config check (:mod:`mmkd_ext.config_check`) and the GPU check
(``tools/misc/gpu_check.py``) iterate :func:`plan_for`'s stages and know no method by name.

A stage's ``run(ctx, outputs)`` builds its config from the earlier stages' ``outputs`` with the services of ``ctx``
(a :class:`StageContext`: load + point at stand-in data, shorten, run a tool, the generic training check), runs it,
and returns its own outputs; ``outputs['reached']`` lists the stage-specific states it reached, and the check fails a
stage that did not reach every state of its ``reaches``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Optional, Protocol, Tuple

from mmengine.config import Config


class StageContext(Protocol):
    """What a stage may use (the config check implements it: :class:`mmkd_ext.config_check.ConfigCheck`).

    Attributes:
        config: path of the checked config.
        configs_root: the ``configs/`` folder of this checkout (rooms find companion configs there).
        work_dir: where the stages write.
        iters: training iterations of a shortened schedule.
        teacher_ckpt: a teacher checkpoint to use instead of the config's (None: the config's, or random).
        held_out_every: 1 training image in this many is held out (stand-in training sets are small).
    """

    config: str
    configs_root: str
    work_dir: str
    iters: int
    teacher_ckpt: Optional[str]
    held_out_every: int
    log: Callable[[str], None]

    def settings(self) -> tuple:
        """What besides a config decides what a stage makes of it (sizes, iterations, data, device, teacher)."""

    def prepare(self, path: str, sub_dir: str = '') -> Config:
        """Load ``path`` pointed at stand-in data, weights replaced, shrunk, work dir ``sub_dir``, extra hooks."""

    def dump(self, cfg: Config, name: str) -> str:
        """Write ``cfg`` into its work dir as ``name``; returns the path."""

    def step(self, name: str) -> ContextManager[Any]:
        """A timed step of the report (``with ctx.step('labels') as rec: ...; rec.note = '...'``)."""

    def run_tool(self, script: str, argv: List[str]) -> Any:
        """Run ``tools/<script>``'s ``main(argv)``; returns what it returns."""

    def check_train(self, path: Optional[str] = None, sub_dir: str = '', prepare: Optional[Callable] = None,
                    after_train: Optional[Callable] = None) -> str:
        """build -> train -> val -> checkpoint -> resume -> test of a training config; returns the checkpoint."""

    def limit_train_iterations(self, cfg: Config) -> str:
        """Shorten ``cfg``'s schedule to :attr:`iters` iterations (one epoch of them); returns a note."""

    def limit_evaluation_images(self, cfg: Config) -> None:
        """Validate and test on a few images."""

    def with_indices(self, dataset: dict, count: int) -> dict:
        """The first ``count`` images of every leaf dataset of ``dataset``."""

    def one_short_schedule(self, train_cfg: dict) -> None:
        """A stage's own ``train_cfg``: :attr:`iters` iterations, or one epoch."""

    def hold_out(self, cfg: Config) -> bool:
        """Hold out 1 training image in :attr:`held_out_every`; returns whether ``cfg`` holds images out."""


StageRun = Callable[[StageContext, Dict[str, Any]], Dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One stage of a run plan.

    Attributes:
        name: stage name (``labels``, ``training``, ``search``, ``pipeline``, ``export``, ...).
        run: ``run(ctx, outputs) -> outputs``: builds the stage's config from the earlier stages' outputs (a dict
            merged over all of them), shortens it, runs it.
        tool: the script a user runs for this stage.
        reaches: states the stage must reach (each must be in the returned ``outputs['reached']``).
        parts: what the stage goes through inside its tool (listed by ``gpu_check.py --list``).
    """

    name: str
    run: StageRun
    tool: str = 'tools/train.py'
    reaches: Tuple[str, ...] = ()
    parts: Tuple[str, ...] = ()

    def describe(self) -> str:
        """``name (parts; reaches: ...)`` in one line."""
        extra = [' > '.join(self.parts)] if self.parts else []
        extra += [f'reaches: {", ".join(self.reaches)}'] if self.reaches else []
        return self.name + (f' ({"; ".join(extra)})' if extra else '')


@dataclass(frozen=True)
class Plan:
    """How the configs that ``matches`` claims run.

    Attributes:
        name: the kind of job (what :func:`kind_of` returns).
        matches: ``cfg -> bool`` on the config as loaded (``Config.fromfile``).
        stages: the stages, in order.
        size_keys: top-level keys besides the data loaders whose input sizes ``--shrink`` scales (a label
            generation's loader, a search proxy's fitness loader, a pipeline's importance loader).
    """

    name: str
    matches: Callable[[Config], bool]
    stages: Tuple[Stage, ...]
    size_keys: Tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """The stages in one line: ``labels > training``."""
        return ' > '.join(stage.describe() for stage in self.stages)


def _train(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    return dict(checkpoint=ctx.check_train())


TRAINING_PLAN = Plan('train', lambda cfg: True, (Stage('training', _train, parts=(
    'build', 'train', 'val', 'checkpoint', 'resume', 'test')),))
_PLANS: Dict[str, Plan] = {}


def register_plan(plan: Plan) -> Plan:
    """Register ``plan`` (a plan of the same name is replaced); returns it."""
    _PLANS[plan.name] = plan
    return plan


def unregister_plan(name: str) -> None:
    """Remove the plan called ``name`` (tests that register a toy method)."""
    _PLANS.pop(name, None)


def registered_plans() -> List[Plan]:
    """Every registered plan, in registration order, then :data:`TRAINING_PLAN`."""
    return list(_PLANS.values()) + [TRAINING_PLAN]


def plan_for(cfg: Config) -> Plan:
    """The plan of the first registered room that claims ``cfg``; :data:`TRAINING_PLAN` when none does.

    Raises:
        ValueError: when two plans claim ``cfg`` (their ``matches`` overlap), naming both.
    """
    claims = [plan for plan in _PLANS.values() if plan.matches(cfg)]
    if len(claims) > 1:
        raise ValueError(f'plans {[p.name for p in claims]} all claim this config: make their matches exclusive')
    return claims[0] if claims else TRAINING_PLAN


def kind_of(cfg: Config) -> str:
    """Which job a config describes: the name of :func:`plan_for`'s plan (``train`` for a training config)."""
    return plan_for(cfg).name


def model_type(cfg: Config) -> str:
    """``cfg.model.type`` without its scope (``mmrazor.AMDDistill`` -> ``AMDDistill``); '' when there is none."""
    model = cfg.get('model')
    return str(model.get('type', '')).split('.')[-1] if isinstance(model, dict) else ''


def reached(outputs: Dict[str, Any], *states: str) -> Dict[str, Any]:
    """``outputs`` with ``states`` added to its ``reached`` list."""
    outputs.setdefault('reached', []).extend(states)
    return outputs
