"""FKD: fast knowledge distillation from stored region-level soft labels (ECCV 2022).

Label generation (:mod:`.generation`, ``tools/fkd/generate_labels.py``) writes a label store
(:mod:`.store`) of compressed teacher soft labels (:mod:`.compression`) for M random crops per image;
training replays the crops (:mod:`.datasets`) without a teacher (:class:`FKDDistill`, or any MMRazor
logit distiller through :class:`StoredTeacher`), counting epochs with :class:`FKDEpochBasedTrainLoop`.
See configs/fkd/README.md.
"""
from ..extraction import architecture_students, register_students
from . import plan  # noqa: F401  (registers FKD's run plans: mmkd_ext/run_plans.py)
from .algorithm import FKDDistill, fkd_loss
from .compression import STRATEGIES, LabelCodec
from .datasets import FKDDataset, FKDReplayCrop, fkd_collate
from .loops import FKDEpochBasedTrainLoop
from .store import LabelStore, LabelStoreError
from .stored_teacher import StoredTeacher

# the student, for tools/model_converters/extract_student.py: FKDDistill's `architecture`
register_students('FKDDistill')(architecture_students)

__all__ = ['FKDDistill', 'fkd_loss', 'LabelCodec', 'STRATEGIES', 'FKDDataset', 'FKDReplayCrop', 'fkd_collate',
           'FKDEpochBasedTrainLoop', 'LabelStore', 'LabelStoreError', 'StoredTeacher']
