"""Which Python the torchrun scripts start, and the Slurm scripts without ``srun`` (issue 24, item 10).

The scripts are copied into a scratch repository whose ``.venv/bin/python`` (and activated environments) are fake
interpreters that only record how they were called, so nothing trains."""
import os
import os.path as osp
import shutil
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPTS = ('dist_train.sh', 'dist_test.sh', 'pick_python.sh')


def fake_python(prefix, log):
    """``prefix/bin/python``: writes its own path and arguments to ``log``."""
    os.makedirs(osp.join(prefix, 'bin'), exist_ok=True)
    path = osp.join(prefix, 'bin', 'python')
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\necho "$0 $*" > {log}\n')
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def scratch_repo(tmp_path):
    """A repository with the launch scripts and a fake ``.venv``; returns (root, log file)."""
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    for name in SCRIPTS:
        shutil.copy(osp.join(ROOT, 'tools', name), repo / 'tools' / name)
    log = tmp_path / 'called.txt'
    fake_python(str(repo / '.venv'), log)
    return repo, log


def run_script(cwd, script, args, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX', 'CONDA_DEFAULT_ENV')}
    return subprocess.run([shutil.which('bash'), script, *args], cwd=cwd, env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize('script,args', [('tools/dist_train.sh', ['cfg.py', '2']),
                                         ('tools/dist_test.sh', ['cfg.py', 'ckpt.pth', '2'])])
def test_the_repository_venv_is_reached_by_an_absolute_path(scratch_repo, script, args):
    repo, log = scratch_repo
    out = run_script(repo, script, args)
    assert out.returncode == 0, out.stderr
    called = log.read_text().split()
    assert called[0] == str(repo / '.venv' / 'bin' / 'python')
    assert called[1:3] == ['-m', 'torch.distributed.run']
    assert str(repo / 'tools' / osp.basename(script).replace('dist_', '').replace('.sh', '.py')) in called


@pytest.mark.parametrize('variable', ['VIRTUAL_ENV', 'CONDA_PREFIX'])
def test_an_activated_environment_wins_over_the_repository_venv(scratch_repo, tmp_path, variable):
    repo, log = scratch_repo
    active = fake_python(str(tmp_path / 'active'), log)
    out = run_script(repo, 'tools/dist_train.sh', ['cfg.py', '1'], **{variable: str(tmp_path / 'active'),
                                                                       'CONDA_DEFAULT_ENV': 'mmkd'})
    assert out.returncode == 0, out.stderr
    assert log.read_text().split()[0] == active


def test_condas_base_environment_and_python_variable(scratch_repo, tmp_path):
    """conda's auto-activated ``base`` does not count as a choice; ``$PYTHON`` beats everything."""
    repo, log = scratch_repo
    fake_python(str(tmp_path / 'base'), log)
    out = run_script(repo, 'tools/dist_train.sh', ['cfg.py', '1'], CONDA_PREFIX=str(tmp_path / 'base'),
                     CONDA_DEFAULT_ENV='base')
    assert out.returncode == 0 and log.read_text().split()[0] == str(repo / '.venv' / 'bin' / 'python')
    chosen = fake_python(str(tmp_path / 'chosen'), log)
    out = run_script(repo, 'tools/dist_train.sh', ['cfg.py', '1'], PYTHON=chosen, VIRTUAL_ENV=str(tmp_path / 'base'))
    assert out.returncode == 0 and log.read_text().split()[0] == chosen


@pytest.mark.parametrize('script,args', [('tools/slurm_train.sh', ['gpu', 'kd', 'cfg.py', 'work']),
                                         ('tools/slurm_test.sh', ['gpu', 'kd', 'cfg.py', 'ckpt.pth']),
                                         ('tools/slurm_run.sh', ['gpu', 'kd', 'tools/amd/run.py'])])
def test_slurm_scripts_without_srun_say_so_and_exit_2(tmp_path, script, args):
    bin_dir = tmp_path / 'bin'  # bash, dirname and the core utilities, but no srun
    bin_dir.mkdir()
    for tool in ('bash', 'dirname', 'cat', 'env'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    out = run_script(ROOT, osp.join(ROOT, script), args, PATH=str(bin_dir))
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert 'srun is not on PATH' in out.stderr and 'tools/dist_train.sh' in out.stderr
    assert 'command not found' not in out.stderr
