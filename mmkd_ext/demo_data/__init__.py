"""Built-in demo data in real on-disk formats, generated on demand (deterministic by seed).

* :func:`make_digits`: scikit-learn's handwritten digits (1,797 real 8x8 images) upsampled to
  32x32 RGB, written as an ImageFolder tree read by mmpretrain's ``CustomDataset``.
* :func:`make_shapes_coco`: procedurally drawn shapes with boxes and masks in a COCO json,
  read by mmdet's ``CocoDataset``.
* :func:`make_cityscapes_scenes`: procedurally drawn street-like scenes in the Cityscapes layout,
  read by mmseg's ``CityscapesDataset``.

``python tools/misc/make_demo_data.py`` writes all three under ``data/demo/``.
"""
from .classification import make_digits
from .detection import make_shapes_coco
from .layout import DemoDataMissing, check_layout
from .segmentation import make_cityscapes_scenes

__all__ = ['make_digits', 'make_shapes_coco', 'make_cityscapes_scenes', 'check_layout', 'DemoDataMissing']
