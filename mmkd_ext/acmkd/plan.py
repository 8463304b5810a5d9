"""ACMKD's run plan: training (past the teacher-attention pre-training epochs: the resume step trains the epoch after
them), then the student export (``tools/acmkd/export_students.py``) of the last checkpoint."""
from __future__ import annotations

import os
import os.path as osp
from typing import Any, Dict

from mmengine.config import Config

from ..compat.checkpoint import load_checkpoint_file
from ..run_plans import Plan, Stage, StageContext, model_type, reached, register_plan

PAST_ATTENTION = 'epochs past teacher_attention_epochs'


def _one_attention_epoch(cfg: Config) -> None:
    """At most one teacher-attention epoch: the check trains one epoch, and its resume the next."""
    cfg.model.teacher_attention_epochs = min(int(cfg.model.get('teacher_attention_epochs', 1)), 1)


def _training(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    ckpt = ctx.check_train(prepare=_one_attention_epoch)
    epochs = load_checkpoint_file(ckpt, map_location='cpu').get('meta', {}).get('epoch', 0)
    attention = int(Config.fromfile(ctx.config).model.get('teacher_attention_epochs', 1))
    return reached(dict(checkpoint=ckpt), *([PAST_ATTENTION] if epochs > min(attention, 1) else []))


def _export(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    with ctx.step('export') as rec:
        out = osp.join(osp.dirname(outputs['checkpoint']), 'students')
        ctx.run_tool('tools/acmkd/export_students.py', [outputs['checkpoint'], '--out-dir', out])
        rec.note = ', '.join(sorted(os.listdir(out)))
    return dict(students=out)


register_plan(Plan('acmkd', lambda cfg: 'ACMKD' in model_type(cfg), (
    Stage('training', _training, reaches=(PAST_ATTENTION,),
          parts=('build', 'train', 'val', 'checkpoint', 'resume (past the attention epochs)', 'test')),
    Stage('export', _export, tool='tools/acmkd/export_students.py'))))
