"""vrm: Virtual Relation Matching (ISV/ICV edges, pruning, two views); see configs/vrm/README.md."""
from .algorithm import VRMDistill
from .data_preprocessor import TwoViewDataPreprocessor
from .hooks import VRMLossWarmupHook
from .losses import LogitAdaptor, VRMLoss
from .transforms import VRMVirtualView

__all__ = ['VRMDistill', 'VRMLoss', 'LogitAdaptor', 'TwoViewDataPreprocessor', 'VRMVirtualView', 'VRMLossWarmupHook']
