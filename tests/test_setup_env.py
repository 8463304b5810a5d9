"""tools/setup_env.sh: the mmcv build plan (CPU ops / CUDA ops for the visible GPUs) and its cache keys."""
import hashlib
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location('mmcv_build_plan', osp.join(ROOT, 'tools/misc/mmcv_build_plan.py'))
plan_mod = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # a tool, not a package module
spec.loader.exec_module(plan_mod)
plan_build = plan_mod.plan_build


def test_arch_list_is_the_sorted_unique_capabilities():
    assert plan_mod.arch_list([(9, 0), (8, 0), (9, 0), (8, 6)]) == '8.0;8.6;9.0'
    assert plan_mod.arch_list([]) == ''


def test_cpu_cache_key_is_the_folder_of_earlier_set_ups():
    assert plan_mod.cache_key('2.14.1', 'cp311') == 'torch2.14.1-cp311'
    assert plan_mod.cache_key('2.14.1+cu130', 'cp311') == 'torch2.14.1-cp311'


def test_cuda_cache_key_names_cuda_version_and_architectures():
    assert plan_mod.cache_key('2.14.1+cu124', 'cp311', '12.4', '8.0;9.0') == 'torch2.14.1-cp311-cu124-sm80_90'
    assert plan_mod.cache_key('2.5.1', 'cp310', '12.1', '8.6+PTX 9.0') == 'torch2.5.1-cp310-cu121-sm86PTX_90'


def test_nvcc_version_is_read_from_its_banner():
    banner = ('nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.4, V12.4.131\n'
              'Build cuda_12.4.r12.4/compiler.34097967_0')
    assert plan_mod.parse_nvcc_version(banner) == '12.4'
    assert plan_mod.parse_nvcc_version('command not found') is None


def test_gpu_with_matching_nvcc_builds_cuda_ops_for_its_architectures():
    plan = plan_build('2.14.1', 'cp311', '12.4', [(9, 0), (9, 0)], '12.6')
    assert (plan.mode, plan.arch_list, plan.cache_key) == ('cuda', '9.0', 'torch2.14.1-cp311-cu124-sm90')
    assert plan.cpu_cache_key == 'torch2.14.1-cp311'


@pytest.mark.parametrize('torch_cuda, gpus', [(None, []), ('13.0', []), (None, [(8, 0)])])
def test_cpu_torch_or_no_gpu_builds_cpu_ops_under_the_old_key(torch_cuda, gpus):
    plan = plan_build('2.14.1', 'cp311', torch_cuda, gpus, None)
    assert (plan.mode, plan.cache_key, plan.arch_list) == ('cpu', 'torch2.14.1-cp311', '')
    assert (plan.note != '') == bool(gpus)  # a GPU that cannot be used is worth a message, a CPU machine is not


def test_gpu_without_nvcc_says_what_fails_and_how_to_fix_it():
    plan = plan_build('2.14.1', 'cp311', '12.4', [(8, 0)], None)
    assert plan.mode == 'cpu' and plan.cache_key == 'torch2.14.1-cp311'
    assert 'no nvcc' in plan.note and 'CUDA_HOME' in plan.note and 'torchvision' in plan.note
    assert 'DeformConv' in plan.note  # what still fails


def test_nvcc_of_another_major_version_than_torch_is_not_used():
    plan = plan_build('2.14.1', 'cp311', '13.0', [(9, 0)], '12.4')
    assert plan.mode == 'cpu' and "does not match torch's CUDA 13.0" in plan.note


def test_requests_and_user_arch_list():
    assert plan_build('2.14.1', 'cp311', '12.4', [(9, 0)], '12.4', request='0').mode == 'cpu'
    user = plan_build('2.14.1', 'cp311', '12.4', [], '12.4', user_arch_list='8.0;9.0')  # a login node
    assert user.mode == 'cuda' and user.cache_key.endswith('-sm80_90')
    with pytest.raises(RuntimeError, match='MMKD_MMCV_CUDA=1 .* no nvcc'):
        plan_build('2.14.1', 'cp311', '12.4', [(9, 0)], None, request='1')
    with pytest.raises(ValueError, match='MMKD_MMCV_CUDA'):
        plan_build('2.14.1', 'cp311', '12.4', [], None, request='yes')


def test_shell_lines_survive_bash_eval():
    plan = plan_mod.BuildPlan('cpu', '', 'torch2.14.1-cp311', 'torch2.14.1-cp311', "it's \"$HOME\" `x`; ok")
    out = subprocess.run(['bash', '-c', 'eval "$(cat)"; printf "%s|%s|%s" "$MMCV_MODE" "$MMCV_CACHE_KEY" '
                          '"$MMCV_NOTE"'], input=plan_mod.shell_lines(plan), capture_output=True, text=True)
    assert out.stdout == "cpu|torch2.14.1-cp311|it's \"$HOME\" `x`; ok"


def test_this_cpu_machine_plans_cpu_ops_in_the_cached_folder():
    env = {k: v for k, v in os.environ.items() if k not in ('MMKD_MMCV_CUDA', 'TORCH_CUDA_ARCH_LIST')}
    out = subprocess.run([sys.executable, 'tools/misc/mmcv_build_plan.py'], cwd=ROOT, capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert 'MMCV_MODE=cpu\n' in out.stdout and 'MMCV_CACHE_KEY=torch2.14.1-cp311\n' in out.stdout


def run_setup(*args, env=None):
    return subprocess.run(['bash', 'tools/setup_env.sh', *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_setup_env_does_nothing_when_the_venv_matches_its_fingerprint(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    (venv / 'bin' / 'python').write_text('#!/bin/sh\nexit 1\n')
    (venv / 'bin' / 'python').chmod(0o755)
    files = sorted(osp.join(ROOT, 'requirements', f) for f in os.listdir(osp.join(ROOT, 'requirements'))
                   if f.endswith('.txt'))
    files += [osp.join(ROOT, p) for p in ('setup.py', 'tools/setup_env.sh', 'tools/misc/mmcv_build_plan.py')]
    digest = hashlib.sha256(b''.join(open(f, 'rb').read() for f in files)).hexdigest()
    (venv / '.mmkd_ext_env').write_text(digest + '\n')
    out = run_setup(env={'MMKD_VENV': str(venv)})
    assert out.returncode == 0 and 'is up to date' in out.stdout, out.stdout + out.stderr


def test_setup_env_rejects_unknown_options_and_byo_without_torch(tmp_path):
    no_torch = tmp_path / 'python'  # an interpreter that cannot import torch
    no_torch.write_text('#!/bin/sh\nexit 1\n')
    no_torch.chmod(0o755)
    assert run_setup('--gpu').returncode == 2
    out = run_setup('--byo', env={'PYTHON': str(no_torch)})
    assert out.returncode == 1 and 'cannot import torch' in out.stderr


def test_torchvision_release_pairs_with_torch():
    assert plan_mod.torchvision_version('2.14.1+cu130') == '0.29.1'
    assert plan_mod.torchvision_version('2.5.0') == '0.20.0'
    with pytest.raises(ValueError, match='torch 2.x'):
        plan_mod.torchvision_version('1.13.1')


# A GPU machine for tools/setup_env.sh's mmcv step, without a GPU: a stub torch (CUDA 13.0, one sm_90 GPU visible
# unless CUDA_VISIBLE_DEVICES hides it), a CUDA_HOME whose nvcc prints a chosen version, and an interpreter that runs
# `pip download` / `pip wheel` of mmcv as a fake sdist whose setup.py takes mmcv 2.1.0's own decision.
STUB_TORCH = """\
import os
__version__ = '2.14.1+cu130'
class version:
    cuda = '13.0'
    hip = None
class cuda:
    @staticmethod
    def is_available():
        return os.environ.get('CUDA_VISIBLE_DEVICES', '0') not in ('', '-1')
    @staticmethod
    def device_count():
        return 1 if cuda.is_available() else 0
    @staticmethod
    def get_device_capability(i=0):
        return (9, 0)
"""
FAKE_MMCV_SETUP = """\
import os, sys, torch
# mmcv 2.1.0 setup.py, get_extensions(): `elif is_rocm_pytorch or torch.cuda.is_available() or FORCE_CUDA == '1'`
ops = 'cuda' if torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1' else 'cpu'
print(f'fake mmcv setup.py: {ops} ops')  # -std=c++14 (patched by setup_env.sh)
if ops == 'cuda' and os.environ.get('FAKE_NVCC_FAILS') == '1':
    sys.exit('nvcc: error')
open(os.path.join(sys.argv[1], f'mmcv-2.1.0-{ops}-none-any.whl'), 'w').close()
"""
FAKE_PY = """\
#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m pip download" ]; then
  d="${{@: -1}}"; mkdir -p "$d/mmcv-2.1.0"; cp {setup} "$d/mmcv-2.1.0/setup.py"
  tar -czf "$d/mmcv-2.1.0.tar.gz" -C "$d" mmcv-2.1.0; exit 0
elif [ "$1 $2 $3" = "-m pip wheel" ]; then
  d="${{@: -1}}"; mkdir -p "$d"; exec {py} setup.py "$d"
fi
exec {py} "$@"
"""


def mmcv_step(tmp_path, nvcc_release, env=None):
    """Source tools/setup_env.sh and run its mmcv step (``mmcv_wheel``) on the fake GPU machine.

    Returns:
        (completed process, the cache folder).
    """
    (tmp_path / 'stub' / 'torch' / 'utils').mkdir(parents=True)
    (tmp_path / 'stub' / 'torch' / '__init__.py').write_text(STUB_TORCH)
    (tmp_path / 'stub' / 'torch' / 'utils' / '__init__.py').write_text('')
    (tmp_path / 'stub' / 'torch' / 'utils' / 'cpp_extension.py').write_text(
        "import os\nCUDA_HOME = os.environ.get('CUDA_HOME')\n")
    (tmp_path / 'cuda' / 'bin').mkdir(parents=True)
    nvcc = tmp_path / 'cuda' / 'bin' / 'nvcc'
    nvcc.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {nvcc_release}, V{nvcc_release}.1"\n')
    (tmp_path / 'setup.py').write_text(FAKE_MMCV_SETUP)
    py = tmp_path / 'python'
    py.write_text(FAKE_PY.format(setup=tmp_path / 'setup.py', py=sys.executable))
    for exe in (nvcc, py):
        exe.chmod(0o755)
    cache = tmp_path / 'wheels'
    env = {**{k: v for k, v in os.environ.items() if k not in ('MMKD_MMCV_CUDA', 'TORCH_CUDA_ARCH_LIST')},
           'PYTHONPATH': str(tmp_path / 'stub'), 'CUDA_HOME': str(tmp_path / 'cuda'), 'CUDA_VISIBLE_DEVICES': '0',
           'MMKD_CACHE_DIR': str(cache), 'PY': str(py), **(env or {})}
    script = 'source tools/setup_env.sh --functions && mmcv_wheel && echo "WHEEL=$MMCV_WHEEL"'
    out = subprocess.run(['bash', '-c', script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    return out, cache


def test_cpu_build_hides_the_gpu_from_mmcv_setup_when_nvcc_major_differs(tmp_path):
    out, cache = mmcv_step(tmp_path, '12.4')  # torch's CUDA is 13.0: the plan says CPU ops
    assert out.returncode == 0, out.stdout + out.stderr
    assert "does not match torch's CUDA 13.0" in out.stdout
    assert 'fake mmcv setup.py: cpu ops' in out.stdout + out.stderr  # FORCE_CUDA=0 alone would compile CUDA ops
    assert f'WHEEL={cache}/torch2.14.1-cp311/mmcv-2.1.0-cpu-none-any.whl' in out.stdout


def test_failed_cuda_compile_falls_back_to_real_cpu_ops(tmp_path):
    out, cache = mmcv_step(tmp_path, '13.0', env={'FAKE_NVCC_FAILS': '1'})
    assert out.returncode == 0, out.stdout + out.stderr
    log = out.stdout + out.stderr
    assert log.index('fake mmcv setup.py: cuda ops') < log.index('fake mmcv setup.py: cpu ops')
    assert (cache / 'torch2.14.1-cp311-cu130-sm90' / 'BUILD_FAILED').is_file()
    assert f'WHEEL={cache}/torch2.14.1-cp311/mmcv-2.1.0-cpu-none-any.whl' in out.stdout
    again, _ = mmcv_step(tmp_path / 'again', '13.0', env={'FAKE_NVCC_FAILS': '1', 'MMKD_MMCV_CUDA': '1'})
    assert again.returncode != 0 and 'CUDA build of mmcv failed (MMKD_MMCV_CUDA=1)' in again.stderr


def test_matching_nvcc_builds_cuda_ops_and_a_prebuilt_wheel_skips_the_compile(tmp_path):
    out, cache = mmcv_step(tmp_path, '13.0')
    assert out.returncode == 0, out.stdout + out.stderr
    assert f'WHEEL={cache}/torch2.14.1-cp311-cu130-sm90/mmcv-2.1.0-cuda-none-any.whl' in out.stdout
    wheel = tmp_path / 'prebuilt' / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.parent.mkdir()
    wheel.write_text('')
    given, _ = mmcv_step(tmp_path / 'given', '13.0', env={'MMKD_MMCV_WHEEL': str(wheel)})
    assert given.returncode == 0 and f'WHEEL={wheel}\n' in given.stdout
    assert 'fake mmcv setup.py' not in given.stdout + given.stderr


def test_byo_adds_the_torchvision_of_its_torch_when_absent(tmp_path):
    py = tmp_path / 'python'  # torch 2.14.1+cu130 without torchvision; the planner's --torchvision runs for real
    py.write_text(f'#!/bin/bash\ncase "$*" in\n  "-c import torchvision") exit 1 ;;\n'
                  f'  "-c import torch; print(torch.__version__)") echo 2.14.1+cu130 ;;\n'
                  f'  *--torchvision) exec {sys.executable} -c "import sys; sys.path.insert(0, \'tools/misc\'); '
                  f'import mmcv_build_plan as p; print(p.torchvision_version(\'2.14.1+cu130\'))" ;;\nesac\n')
    py.chmod(0o755)
    script = 'source tools/setup_env.sh --functions && PIP=(echo pip install) && install_torchvision'
    out = subprocess.run(['bash', '-c', script], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, 'PY': str(py)}, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.endswith('pip install --no-deps torchvision==0.29.1\n'), out.stdout
