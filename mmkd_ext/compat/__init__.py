"""What upstream breaks on current torch, restored in one place (applied by ``import mmkd_ext``).

* :mod:`.torch_quantization`: names MMRazor 1.0.0 imports from torch quantization
  (open-mmlab/mmrazor#615, #632), so ``import mmrazor.models`` works on torch>=2.
* :mod:`.checkpoint`: MMEngine checkpoints load with ``weights_only=True`` (torch>=2.6 default)
  through an exact allow-list, with an explicit per-file opt-in for full unpickling.
* :mod:`.distributed`: ``--launcher pytorch/slurm/mpi`` on machines without a GPU (gloo, CPU DDP), and
  torch's rank variables from ``SLURM_*`` / ``OMPI_*`` for the tools that start their own processes.
* :mod:`.mmcv_ops`: mmcv's nms / RoIAlign / sigmoid focal loss on CUDA tensors run torchvision's kernels
  where mmcv was compiled without CUDA.
* :mod:`.renames`: MMRazor's ``mmcls::`` configs and other renamed OpenMMLab names load (one table).
* :mod:`.package_configs`: ``mmkd_ext::`` config paths (``Config.fromfile``, ``_base_``), like ``mmdet::``.
* :mod:`.datafree`: MMRazor's data-free distillers (DAFL, DFAD, ZSKT) run without a launcher (unwrapped generator).
* :mod:`.config_text`: MMEngine's yapf formatting of a config text runs once per distinct text in a process (a Runner
  formatted the same config three times; a config check 21 times: 15 of its 19 s); the output is unchanged.
* :mod:`.runner_names`: two Runners built within the same second of one process get their own logger, visualizer and
  log folder (MMEngine handed the second one the first one's visualizer).

``apply()`` is idempotent; ``APPLIED`` lists what was patched in this process.
"""
from typing import List

from . import checkpoint, config_text, datafree, mmcv_ops, package_configs, renames, runner_names, torch_quantization

APPLIED: List[str] = []
_done = False


def apply() -> List[str]:
    """Apply every compatibility patch once; must run before ``mmrazor.models`` is imported.

    Returns:
        Human-readable names of what was restored or replaced.
    """
    global _done
    if not _done:
        APPLIED.extend(torch_quantization.apply())
        APPLIED.extend(checkpoint.apply())
        APPLIED.extend(renames.apply())
        APPLIED.extend(mmcv_ops.apply())
        APPLIED.extend(package_configs.apply())
        APPLIED.extend(datafree.apply())
        APPLIED.extend(config_text.apply())
        APPLIED.extend(runner_names.apply())
        _done = True
    return APPLIED


__all__ = ['apply', 'APPLIED', 'checkpoint', 'config_text', 'datafree', 'mmcv_ops', 'package_configs', 'renames',
           'runner_names', 'torch_quantization']
