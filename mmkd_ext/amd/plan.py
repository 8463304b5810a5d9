"""AMD's run plan: the pipeline (``tools/amd/run.py``: importance -> joint_i -> select_i -> final -> export), shortened,
with a pruned teacher reached (the final stage distils from a pruned TA), then ``tools/test.py`` on the export."""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict

from ..run_plans import Plan, Stage, StageContext, reached, register_plan


def limit_importance_samples(amd: dict, samples: int, batch_size: int = 2) -> None:
    """AMD's importance stage on ``samples`` training images in batches of ``batch_size`` (the configs ask for 2048
    per-example gradients: on every stand-in image, the ViT-B check spent minutes there)."""
    importance = amd.setdefault('importance', {})
    importance['max_samples'] = min(importance.get('max_samples') or samples, samples)
    loader = importance.get('dataloader')
    if isinstance(loader, dict) and 'batch_size' in loader:
        loader['batch_size'] = min(loader['batch_size'], batch_size)


def select_a_pruned_teacher(amd: dict) -> str:
    """Make the selection choose the largest pruned candidate as TA (NPSD rule, threshold -1e9), so the final stage
    distils from a pruned teacher; on stand-in data a rule may pick the target and skip the final training. The
    oracle rule is kept: it distils the student from every pruned candidate. Returns a note."""
    selection = amd.setdefault('selection', {})
    if selection.get('rule') == 'oracle':
        return 'oracle selection (a student from every pruned TA)'
    selection.update(rule='npsd_threshold', npsd_threshold=-1e9)  # every NPSD is above it: the first candidate
    return 'selection: the largest pruned candidate (npsd_threshold -1e9), a pruned TA teaches the final stage'


def pruned_teacher_reached(state: Dict[str, Any]) -> bool:
    """Whether a stage of ``state`` (``amd_state.json``) trained under a teacher pruned below scale 1."""
    final = state.get('final', {})
    trained_final = final.get('trained') and final.get('ta_scale', 1.0) < 1.0
    return bool(trained_final or any(name.startswith('oracle_') for name in state))


def _pipeline(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    with ctx.step('pipeline') as rec:
        cfg = ctx.prepare(ctx.config, 'amd')
        ctx.hold_out(cfg)  # HeldOutSubset datasets
        cfg.amd['selection'] = dict(cfg.amd.get('selection') or {}, held_out_every=ctx.held_out_every)
        note = select_a_pruned_teacher(cfg.amd)
        images = ctx.iters * 2 * ctx.held_out_every  # the selection split holds every n-th image out
        cfg.train_dataloader.dataset = ctx.with_indices(cfg.train_dataloader.dataset, images)
        ctx.limit_evaluation_images(cfg)
        limit_importance_samples(cfg.amd, ctx.iters * 2)
        for key in ('joint_train_cfg', 'final_train_cfg'):
            if key in cfg.amd:
                ctx.one_short_schedule(cfg.amd[key])
        state = ctx.run_tool('tools/amd/run.py', [ctx.dump(cfg, 'amd_config.py'), '--work-dir', cfg.work_dir])
        rec.note = ', '.join(state) + f'; {note}'
    export = state.get('export', {}).get('student', {})
    states = [name for name in ('importance', 'final', 'export') if name in state]
    return reached(dict(export=export, work_dir=cfg.work_dir), *states,
                   *(['pruned teacher'] if pruned_teacher_reached(state) else []))


def _test(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    with ctx.step('test') as rec:
        config, ckpt = outputs['export'].get('config'), outputs['export'].get('checkpoint')
        if not (config and ckpt):
            raise RuntimeError(f'the AMD export names no config/checkpoint: {outputs["export"]}')
        rec.note = str(ctx.run_tool('tools/test.py', [config, ckpt, '--work-dir',
                                                      osp.join(outputs['work_dir'], 'test')]))
    return {}


register_plan(Plan('amd', lambda cfg: 'amd' in cfg, (
    Stage('pipeline', _pipeline, tool='tools/amd/run.py', reaches=('importance', 'final', 'export', 'pruned teacher'),
          parts=('importance', 'joint_i', 'select_i', 'final (pruned teacher)', 'export')),
    Stage('test', _test, tool='tools/test.py')), size_keys=('amd',)))
