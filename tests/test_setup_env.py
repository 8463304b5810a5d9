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
