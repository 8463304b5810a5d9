"""vrm: Virtual Relation Matching (ISV/ICV edges, pruning, two views); see configs/vrm/README.md."""
from ..extraction import architecture_students, register_students
from .algorithm import VRMDistill
from .data_preprocessor import TwoViewDataPreprocessor
from .hooks import VRMLossWarmupHook
from .losses import LogitAdaptor, VRMLoss
from .transforms import VRMVirtualView

# the student, for tools/model_converters/extract_student.py: SingleTeacherDistill's `architecture`
register_students('VRMDistill')(architecture_students)

__all__ = ['VRMDistill', 'VRMLoss', 'LogitAdaptor', 'TwoViewDataPreprocessor', 'VRMVirtualView', 'VRMLossWarmupHook']
