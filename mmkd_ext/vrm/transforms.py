"""The virtual view of VRM: a RandAugment-ed copy of the (already weakly augmented) real view.

Paper Sec. 3.5: "we create a virtual view ... by applying semantic-preserving transformations to original
image x_i ... we choose RandAugment". [R] METHODS.md 5.2 (V10): the virtual view shares the real view's
random crop and flip; place :class:`VRMVirtualView` after them in the train pipeline. For independently
cropped views use mmpretrain's ``MultiView(num_views=[1, 1], transforms=[[weak], [weak, RandAugment]])``
instead; both produce ``results['img'] = [real, virtual]``.
"""
from __future__ import annotations

from typing import Callable, List, Union

from mmcv.transforms import BaseTransform, Compose

from ..registry import PRETRAIN_TRANSFORMS


@PRETRAIN_TRANSFORMS.register_module()
class VRMVirtualView(BaseTransform):
    """Turn ``results['img']`` into ``[real, virtual]`` with ``virtual = transforms(real)``.

    Args:
        transforms: the virtual-view transforms (configs or callables), e.g.
            ``[dict(type='RandAugment', policies='timm_increasing', num_policies=2, magnitude_level=9,
            total_level=10)]`` ([P] n = 2 operations, Table 5; [R] magnitude 9 of 10).
    """

    def __init__(self, transforms: List[Union[dict, Callable[[dict], dict]]]) -> None:
        if not transforms:
            raise ValueError('VRMVirtualView: give at least one transform for the virtual view (e.g. RandAugment)')
        # built in mmpretrain's registry whatever the current default scope (RandAugment is an mmpretrain transform)
        self.pipeline = Compose([PRETRAIN_TRANSFORMS.build(dict(t, _scope_=t.get('_scope_', 'mmpretrain')))
                                 if isinstance(t, dict) else t for t in transforms])

    def transform(self, results: dict) -> dict:
        """Append the virtual view; ``results['img']`` becomes a list of two images of the same size."""
        img = results['img']
        if isinstance(img, list):
            raise ValueError('VRMVirtualView: results["img"] is already a list of views; use it once, after the '
                             'shared (weak) transforms and before PackInputs')
        virtual = self.pipeline(dict(results, img=img.copy()))
        if virtual is None:
            raise RuntimeError('VRMVirtualView: a virtual-view transform dropped the sample (returned None)')
        if virtual['img'].shape != img.shape:
            raise ValueError(f'VRMVirtualView: the virtual view has shape {virtual["img"].shape} but the real view '
                             f'{img.shape}; both views are stacked into one batch, so keep the size unchanged')
        results['img'] = [img, virtual['img']]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(transforms={self.pipeline})'
