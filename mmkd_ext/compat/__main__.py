"""``python -m mmkd_ext.compat``: the patches applied here, and which detection kernels run on GPU tensors."""
import mmkd_ext  # noqa: F401  (applies the layer)
from mmkd_ext.compat import APPLIED
from mmkd_ext.compat.mmcv_ops import ops_path

print('compatibility patches applied:')
for name in APPLIED:
    print(f'  {name}')
print(f'detection ops on GPU tensors: {ops_path()}')
