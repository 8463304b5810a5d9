"""What ACMKD's students are, for ``tools/model_converters/extract_student.py`` (:mod:`mmkd_ext.extraction`).

Every peer student is one: ``DIR/<name>.py`` + ``DIR/<name>.pth``, the same weights and ``meta`` as
:func:`.export.export_students` writes (plus the config).
"""
from __future__ import annotations

from typing import List

from mmengine.config import Config

from ..extraction import Student, load_state, register_students
from .export import plain_cfg, student_state_dict


@register_students('ACMKDDistill')
def acmkd_students(cfg: Config, checkpoint: str) -> List[Student]:
    """One :class:`Student` per ``model.students`` entry: its classifier, weights ``student_<name>.classifier.*``."""
    state, _ = load_state(checkpoint)
    students = []
    for name, spec in cfg.model.students.items():
        model = plain_cfg(spec['model'].to_dict() if hasattr(spec['model'], 'to_dict') else spec['model'])
        if cfg.model.get('data_preprocessor') is not None:  # what every student saw (default: the first's own)
            model['data_preprocessor'] = plain_cfg(cfg.model.data_preprocessor.to_dict())
        students.append(Student(name, model, student_state_dict(state, name), dict(acmkd_student=name,
                                                                                   model_cfg=model)))
    return students
