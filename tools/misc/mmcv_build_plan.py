"""How tools/setup_env.sh builds mmcv's ops on this machine: CPU ops, or CUDA ops for the visible GPUs.

    python tools/misc/mmcv_build_plan.py                # prints shell assignments: eval "$(python ... )"
    python tools/misc/mmcv_build_plan.py --torchvision  # the torchvision release of this torch (0.29.1)

Runs with the interpreter whose torch mmcv is built against (only torch is imported). The decision:

* ``MMKD_MMCV_CUDA=0``, a CPU build of torch, or no visible GPU (and no ``TORCH_CUDA_ARCH_LIST`` given):
  CPU ops, cache key ``torch<version>-<python>`` (the key of every earlier set-up, so cached wheels stay valid).
* a GPU and an ``nvcc`` whose major version matches torch's CUDA: CUDA ops for the GPUs' compute
  capabilities (``TORCH_CUDA_ARCH_LIST``, e.g. ``9.0``), key ``torch<version>-<python>-cu<cuda>-sm<archs>``.
* a GPU without a usable ``nvcc``: CPU ops plus a message saying what fails and how to fix it; mmkd_ext's
  compatibility layer then runs nms / RoIAlign / focal loss on CUDA tensors with torchvision's kernels.

``MMKD_MMCV_CUDA=1`` insists on CUDA ops (an error when impossible), e.g. on a login node without GPUs
together with ``TORCH_CUDA_ARCH_LIST``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

WITHOUT_CUDA_OPS = ('mmcv without CUDA ops: nms/batched_nms, RoIAlign and sigmoid focal loss on GPU tensors run '
                    "torchvision's kernels (mmkd_ext/compat/mmcv_ops.py), so every mmkd_ext config trains; other "
                    'mmcv CUDA ops (DeformConv, CARAFE, MaskedConv, ...) raise "not compiled with GPU support".')


@dataclass(frozen=True)
class BuildPlan:
    """What to build: ``mode`` 'cpu' or 'cuda', ``arch_list`` for ``TORCH_CUDA_ARCH_LIST``, ``cache_key``, ``note``.

    ``cpu_cache_key`` is where the CPU-ops wheel goes when a planned CUDA build fails.
    """

    mode: str
    arch_list: str
    cache_key: str
    cpu_cache_key: str
    note: str = ''


def arch_list(capabilities: Iterable[Tuple[int, int]]) -> str:
    """``TORCH_CUDA_ARCH_LIST`` of the given compute capabilities: sorted, unique, ``'8.0;9.0'``."""
    return ';'.join(f'{major}.{minor}' for major, minor in sorted(set(capabilities)))


def cache_key(torch_version: str, py_tag: str, cuda: Optional[str] = None, archs: str = '') -> str:
    """Wheel cache folder name: ``torch2.14.1-cp311`` (CPU ops), ``torch2.14.1-cp311-cu124-sm80_90`` (CUDA ops).

    Args:
        torch_version: torch's version; a local part (``+cu124``) is dropped.
        py_tag: ``cp311``.
        cuda: CUDA version of the build (``'12.4'``), None for CPU ops.
        archs: ``TORCH_CUDA_ARCH_LIST`` of the build (``'8.0;9.0'``; ``+PTX`` and spaces allowed).
    """
    key = f"torch{torch_version.split('+')[0]}-{py_tag}"
    if cuda is None:
        return key
    sms = '_'.join(re.sub(r'[^0-9A-Za-z]', '', a) for a in re.split(r'[;\s]+', archs.strip()) if a)
    return f"{key}-cu{cuda.replace('.', '')}-sm{sms}"


def parse_nvcc_version(text: str) -> Optional[str]:
    """``'12.4'`` from ``nvcc --version`` output (``... Cuda compilation tools, release 12.4, V12.4.131``)."""
    match = re.search(r'release (\d+)\.(\d+)', text)
    return f'{match.group(1)}.{match.group(2)}' if match else None


def torchvision_version(torch_version: str) -> str:
    """The torchvision release built against a torch release: torch ``2.N.P`` pairs with torchvision ``0.(N+15).P``.

    Args:
        torch_version: ``torch.__version__`` (``'2.14.1+cu130'``; a local part is dropped).

    Returns:
        ``'0.29.1'``.
    """
    major, minor, patch = (int(re.match(r'\d+', part).group()) for part in torch_version.split('+')[0].split('.')[:3])
    if major != 2:
        raise ValueError(f'no torchvision pairing rule for torch {torch_version} (torch 2.x only)')
    return f'0.{minor + 15}.{patch}'


def plan_build(torch_version: str, py_tag: str, torch_cuda: Optional[str], gpu_caps: Sequence[Tuple[int, int]],
               nvcc_version: Optional[str], request: str = 'auto', user_arch_list: str = '') -> BuildPlan:
    """Decide the mmcv build (see the module docstring).

    Args:
        torch_version: ``torch.__version__``.
        py_tag: ``cp311``.
        torch_cuda: ``torch.version.cuda`` (None for a CPU build of torch).
        gpu_caps: compute capabilities of the visible GPUs (empty without GPUs).
        nvcc_version: version of the ``nvcc`` torch would use (None when there is none).
        request: ``$MMKD_MMCV_CUDA``: 'auto', '0' (CPU ops) or '1' (CUDA ops or an error).
        user_arch_list: ``$TORCH_CUDA_ARCH_LIST`` when set (wins over the GPUs' capabilities).

    Returns:
        The :class:`BuildPlan`.
    """
    if request not in ('auto', '0', '1'):
        raise ValueError(f"MMKD_MMCV_CUDA must be 0, 1 or unset, got {request!r}")
    cpu = cache_key(torch_version, py_tag)
    if request == '0':
        return BuildPlan('cpu', '', cpu, cpu, 'MMKD_MMCV_CUDA=0: CPU ops. ' + WITHOUT_CUDA_OPS if gpu_caps else '')
    archs = user_arch_list.strip() or arch_list(gpu_caps)
    problem = None
    if torch_cuda is None:
        problem = f'torch {torch_version} is a CPU build'
    elif not archs:
        problem = 'no GPU is visible and TORCH_CUDA_ARCH_LIST is not set'
    elif nvcc_version is None:
        problem = ('no nvcc (CUDA compiler) found. Fix: install the CUDA toolkit ' + torch_cuda + " (torch's CUDA), "
                   'e.g. `module load cuda/' + torch_cuda + '` on a cluster, set CUDA_HOME to it, then '
                   '`rm .venv/.mmkd_ext_env; make env` (or MMKD_MMCV_CUDA=0 to keep CPU ops without this message)')
    elif nvcc_version.split('.')[0] != torch_cuda.split('.')[0]:
        problem = (f"nvcc {nvcc_version} does not match torch's CUDA {torch_cuda} (torch refuses to build "
                   f'extensions across major versions). Fix: point CUDA_HOME at a CUDA {torch_cuda} toolkit')
    if problem is None:
        return BuildPlan('cuda', archs, cache_key(torch_version, py_tag, torch_cuda, archs), cpu,
                         f'CUDA ops for TORCH_CUDA_ARCH_LIST={archs} with nvcc {nvcc_version}')
    if request == '1':
        raise RuntimeError(f'MMKD_MMCV_CUDA=1 but mmcv cannot be built with CUDA here: {problem}')
    if not gpu_caps:  # a machine without GPUs: CPU ops are what it needs, nothing to warn about
        return BuildPlan('cpu', '', cpu, cpu)
    return BuildPlan('cpu', '', cpu, cpu,
                     f'WARNING: a GPU is visible but {problem}. Building CPU ops. ' + WITHOUT_CUDA_OPS)


def shell_lines(plan: BuildPlan) -> str:
    """``MMCV_MODE``, ``MMCV_ARCH_LIST``, ``MMCV_CACHE_KEY``, ``MMCV_CPU_CACHE_KEY``, ``MMCV_NOTE`` for ``eval``."""
    values = dict(MMCV_MODE=plan.mode, MMCV_ARCH_LIST=plan.arch_list, MMCV_CACHE_KEY=plan.cache_key,
                  MMCV_CPU_CACHE_KEY=plan.cpu_cache_key, MMCV_NOTE=plan.note)
    return '\n'.join(f'{k}={shlex.quote(v)}' for k, v in values.items())


def _nvcc_version() -> Optional[str]:
    from torch.utils.cpp_extension import CUDA_HOME  # CUDA_HOME / CUDA_PATH / `which nvcc` / /usr/local/cuda
    if not CUDA_HOME or not os.path.isfile(os.path.join(CUDA_HOME, 'bin', 'nvcc')):
        return None
    out = subprocess.run([os.path.join(CUDA_HOME, 'bin', 'nvcc'), '--version'], capture_output=True, text=True,
                         check=False)
    return parse_nvcc_version(out.stdout)


def plan_this_machine() -> BuildPlan:
    """:func:`plan_build` with this interpreter's torch, its visible GPUs and its nvcc."""
    import torch
    gpus = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    user_archs = os.environ.get('TORCH_CUDA_ARCH_LIST', '')
    nvcc = _nvcc_version() if torch.version.cuda and (gpus or user_archs) else None
    return plan_build(torch.__version__, f'cp{sys.version_info[0]}{sys.version_info[1]}', torch.version.cuda, gpus,
                      nvcc, os.environ.get('MMKD_MMCV_CUDA', 'auto'), user_archs)


if __name__ == '__main__':
    if sys.argv[1:] == ['--torchvision']:
        import torch
        print(torchvision_version(torch.__version__))
        sys.exit(0)
    with contextlib.redirect_stdout(sys.stderr):  # torch's own notices must not reach `eval`
        plan = plan_this_machine()
    print(shell_lines(plan))
