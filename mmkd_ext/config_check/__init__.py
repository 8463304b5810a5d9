"""Run a shipped config end to end on stand-in data: ``python tools/misc/check_config.py CONFIG [--shrink]``.

The check points the config at stand-in data in the real formats (:mod:`mmkd_ext.demo_data.standin`; the built-in
demo data for demo configs), replaces weights that would be downloaded or are missing by random initialisation (one
line per weight, :func:`mmkd_ext.weight_sources.replace_unavailable_weights`), optionally shrinks inputs and batches
(``--shrink``: sizes only, same models and pipeline steps), shortens the schedule to a few iterations, and runs the
stages of the config's run plan (:mod:`mmkd_ext.run_plans`, registered by the method rooms), what a user runs:

* a training config: build, N train iterations, one validation pass with the real metric, checkpoint, ``--resume``
  for one more epoch/iteration, and ``tools/test.py`` on the checkpoint;
* a config a method room claims: that room's stages (e.g. label generation then training, a search then its best
  config, a pipeline then a test of its export, training then an export), each reaching its stage-specific states.

Each step prints one line with its time and peak memory; the first step that fails ends the check with
:class:`ConfigCheckFailed` naming it (the tool exits non-zero).

Modules: :mod:`.rewrite` (stand-in data, loaders, visualizer, hooks), :mod:`.shrink` (input sizes),
:mod:`.shorten` (iterations, images, held-out splits), :mod:`.steps` (timed steps, report, tools, times table),
:mod:`.check` (:class:`ConfigCheck`).
"""
from ..run_plans import kind_of, plan_for
from .check import ConfigCheck, check_config
from .rewrite import add_extra_hooks, point_at_standin_data
from .shorten import extend_schedule, limit_evaluation_images, limit_train_iterations, shorten_held_out_split
from .shrink import shrink, task_of
from .steps import (
    STEP_ORDER,
    TIMES_FILE,
    CheckReport,
    ConfigCheckFailed,
    StepRecord,
    checkpoint_files,
    record_times,
    render_times_table,
    run_tool,
)

__all__ = ['ConfigCheck', 'ConfigCheckFailed', 'CheckReport', 'StepRecord', 'check_config', 'shrink', 'task_of',
           'point_at_standin_data', 'add_extra_hooks', 'kind_of', 'plan_for', 'record_times', 'render_times_table',
           'checkpoint_files', 'run_tool', 'limit_train_iterations', 'limit_evaluation_images', 'extend_schedule',
           'shorten_held_out_split', 'STEP_ORDER', 'TIMES_FILE']
