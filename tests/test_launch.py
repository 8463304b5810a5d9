"""One device per local rank, and torch's rank variables from torchrun / srun / mpirun (mmkd_ext/launch.py)."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, config_path
from gloo_ranks import free_port

from mmkd_ext.compat.distributed import (
    LauncherEnvironmentError,
    export_torch_env,
    torch_env_from_mpi,
    torch_env_from_slurm,
)
from mmkd_ext.launch import device_for_local_rank, select_device, setup_launcher


@pytest.mark.parametrize('local_rank', [0, 1, 2, 3])
def test_each_local_rank_gets_its_own_gpu(local_rank):
    assert device_for_local_rank(local_rank, cuda_available=True, device_count=4) == torch.device('cuda', local_rank)


@pytest.mark.parametrize('local_rank', [0, 1, 2, 3])
def test_without_cuda_every_local_rank_runs_on_cpu(local_rank):
    assert device_for_local_rank(local_rank, cuda_available=False, device_count=0) == torch.device('cpu')


def test_more_ranks_than_gpus_on_a_node_is_an_error_naming_both_counts():
    with pytest.raises(RuntimeError, match='LOCAL_RANK 2 needs GPU 2, but this process sees 2 GPU'):
        device_for_local_rank(2, cuda_available=True, device_count=2)
    with pytest.raises(ValueError, match='>= 0'):
        device_for_local_rank(-1, cuda_available=False, device_count=0)


@pytest.mark.parametrize('local_rank', [0, 1, 2, 3])
def test_select_device_makes_the_local_rank_gpu_current(monkeypatch, local_rank):
    current = []
    monkeypatch.setenv('LOCAL_RANK', str(local_rank))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)
    monkeypatch.setattr(torch.cuda, 'set_device', current.append)
    assert select_device() == torch.device('cuda', local_rank)
    assert current == [torch.device('cuda', local_rank)]


def test_select_device_on_this_cpu_machine_is_cpu(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '3')
    assert select_device() == torch.device('cpu')


SLURM = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1', SLURM_NODELIST='gpu[03-04]')


def test_slurm_task_variables_become_torch_rank_variables():
    hosts = []
    env = torch_env_from_slurm(dict(SLURM), first_host=lambda nodes: hosts.append(nodes) or 'gpu03')
    assert env == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='gpu03', MASTER_PORT='29500')
    assert hosts == ['gpu[03-04]']
    kept = torch_env_from_slurm({**SLURM, 'MASTER_ADDR': 'head', 'MASTER_PORT': '1234'}, first_host=None)
    assert (kept['MASTER_ADDR'], kept['MASTER_PORT']) == ('head', '1234')


def test_slurm_port_comes_from_the_job_id_unless_master_port_is_set():
    # two jobs on the same first node: 20000 + 1234567 % 10000 = 24567 and 20000 + 1234568 % 10000 = 24568
    ports = [torch_env_from_slurm({**SLURM, 'SLURM_JOB_ID': job}, first_host=lambda _: 'gpu03')['MASTER_PORT']
             for job in ('1234567', '1234568')]
    assert ports == ['24567', '24568']
    kept = torch_env_from_slurm({**SLURM, 'SLURM_JOB_ID': '1234567', 'MASTER_PORT': '1234'}, first_host=lambda _: 'h')
    assert kept['MASTER_PORT'] == '1234'


def test_missing_slurm_variables_are_named_with_the_way_to_start_the_job():
    with pytest.raises(LauncherEnvironmentError, match='SLURM_NTASKS, SLURM_LOCALID.*srun') as err:
        torch_env_from_slurm(dict(SLURM_PROCID='0', SLURM_NODELIST='n1'))
    assert isinstance(err.value, KeyError) and isinstance(err.value, RuntimeError)


def test_mpi_and_none_launchers():
    mpi = dict(OMPI_COMM_WORLD_RANK='3', OMPI_COMM_WORLD_SIZE='4', OMPI_COMM_WORLD_LOCAL_RANK='1', MASTER_ADDR='h')
    assert torch_env_from_mpi(mpi) == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='h',
                                           MASTER_PORT='29500')
    environ = {'LOCAL_RANK': '0'}
    assert export_torch_env('none', environ) == {} and environ == {'LOCAL_RANK': '0'}
    with pytest.raises(ValueError, match='unknown launcher'):
        export_torch_env('ray', environ)


def test_setup_launcher_exports_slurm_ranks_into_the_environment(monkeypatch):
    for key, value in {**SLURM, 'MASTER_ADDR': '127.0.0.1'}.items():
        monkeypatch.setenv(key, value)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_PORT'):  # restored afterwards: the code sets them
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    info = setup_launcher('slurm')
    assert (info.rank, info.world_size, info.local_rank, info.device) == (5, 8, 1, torch.device('cpu'))
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['LOCAL_RANK']) == ('5', '8', '1')


def srun_on_path(tmp_path):
    """A PATH whose ``srun`` is tests/fake_srun.sh (starts the tasks locally with SLURM_* set)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').symlink_to(os.path.join(ROOT, 'tests', 'fake_srun.sh'))
    return f"{bin_dir}:{os.environ['PATH']}"


def test_slurm_train_sh_asks_srun_for_one_task_per_gpu(tmp_path):
    log = tmp_path / 'srun.txt'
    env = {**os.environ, 'PATH': srun_on_path(tmp_path), 'FAKE_SRUN_LOG': str(log), 'FAKE_SRUN_DRY': '1',
           'GPUS': '16', 'GPUS_PER_NODE': '8', 'SRUN_ARGS': '--time=1:00:00 --qos=high'}
    out = subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'kd', 'cfg.py', 'work', '--amp'], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert log.read_text().split() == [
        '-p', 'gpu', '--job-name=kd', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', '--time=1:00:00', '--qos=high', 'python', '-u', 'tools/train.py', 'cfg.py',
        '--work-dir=work', '--amp', '--launcher', 'slurm']


def test_launcher_slurm_joins_srun_tasks_into_one_gloo_group_on_cpu(tmp_path):
    """Two srun tasks (SLURM_* only, no RANK) join one gloo group through the tools' load_config."""
    config = tmp_path / 'tiny.py'
    config.write_text('work_dir = "unused"\n')
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')}
    env.update(PATH=srun_on_path(tmp_path), FAKE_SRUN_LOG=str(tmp_path / 'srun.txt'), GPUS='2', GPUS_PER_NODE='2',
               PYTHON=sys.executable, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
               PYTHONPATH=os.path.join(ROOT, 'tests'), OMP_NUM_THREADS='1', RESULT_DIR=str(tmp_path))
    out = subprocess.run(['bash', 'tools/slurm_run.sh', 'cpu', 'job', 'tests/slurm_worker.py', str(config),
                          '--work-dir', str(tmp_path / 'w')], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    seen = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert seen[0] == seen[1]
    assert seen[0] == dict(ranks=[[0, 0], [1, 1]], world=2, backend='gloo', device_ids=None,
                            work_dir=str(tmp_path / 'w'))


def test_torchrun_variables_are_checked_and_a_missing_local_rank_is_left_to_local_rank_argument():
    env = dict(RANK='1', WORLD_SIZE='2', MASTER_ADDR='h', MASTER_PORT='1')
    assert export_torch_env('pytorch', dict(env)) == env  # legacy launch: --local_rank fills LOCAL_RANK later
    assert export_torch_env('pytorch', {**env, 'LOCAL_RANK': '1'})['LOCAL_RANK'] == '1'
    with pytest.raises(LauncherEnvironmentError, match='MASTER_ADDR, MASTER_PORT.*torchrun'):
        export_torch_env('pytorch', dict(RANK='0', WORLD_SIZE='1'))


def test_close_process_group_destroys_the_running_group_and_is_a_no_op_without_one():
    import torch.distributed as dist

    from mmkd_ext.launch import close_process_group
    close_process_group()  # nothing running: nothing to do
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        close_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


AT_EXIT_PROBE = """
import atexit, runpy, sys
import torch.distributed as dist
atexit.register(lambda: print('process group alive at exit:', dist.is_initialized(), flush=True))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_train_tool_under_a_launcher_destroys_its_process_group_before_exit(tmp_path, digits_root):
    """Gloo threads left to interpreter shutdown abort ranks now and then (SIGABRT): the tool closes the group."""
    config = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')
    env = dict(os.environ, RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-c', AT_EXIT_PROBE, 'tools/train.py', config, '--launcher', 'pytorch',
           '--work-dir', str(tmp_path / 'work'), '--cfg-options', 'model.teacher_ckpt=None',
           'train_dataloader.dataset.indices=32', 'val_dataloader.dataset.indices=8', 'train_cfg.max_epochs=1',
           'log_level=WARNING']
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'process group alive at exit: False' in proc.stdout


EXIT_PROBE = """
import atexit, os, sys
atexit.register(lambda: print('atexit handlers ran', flush=True))
from mmkd_ext.launch import exit_after_tool
print('work done', flush=True)
exit_after_tool()
print('interpreter went on', flush=True)
"""


@pytest.mark.parametrize('world_size, went_on', [('2', False), ('1', True)])
def test_exit_after_tool_leaves_a_rank_of_several_without_interpreter_finalization(world_size, went_on):
    """A rank aborted in interpreter finalization about once in ten CI torchrun runs (SIGABRT, the job done): under
    several ranks the tool runs the atexit handlers and leaves with os._exit(0); one process exits as usual."""
    env = dict(os.environ, WORLD_SIZE=world_size, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', EXIT_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == 'work done' and 'atexit handlers ran' in lines
    assert ('interpreter went on' in lines) is went_on


@pytest.mark.parametrize('made', [False, True])
def test_resume_without_a_checkpoint_in_the_work_dir_is_an_error_naming_it(tmp_path, digits_root, made):
    """MMEngine trained from scratch, "Auto resumed from the latest checkpoint None." the only sign (issue 24, 5)."""
    from mmkd_ext.launch import NothingToResumeError
    from tools.train import main
    work = tmp_path / 'work'
    if made:
        work.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        main([config_path('kd', 'resnet8x0.5_1xb32-30e_digits.py'), '--work-dir', str(work), '--resume',
              '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=32',
              'val_dataloader.dataset.indices=16'])
    assert isinstance(err.value, NothingToResumeError)
    msg = str(err.value)
    assert f"--resume: the work dir '{work}'" in msg and 'holds no checkpoint' in msg and 'Drop --resume' in msg
    assert ('no epoch/iter checkpoint was saved' if made else 'the directory does not exist') in msg
    assert not (work / 'epoch_1.pth').exists()


@pytest.mark.parametrize('environ, expected', [({}, 1), ({'LOCAL_WORLD_SIZE': '4'}, 4),
                                               ({'SLURM_NTASKS_PER_NODE': '8(x2)'}, 8),
                                               ({'OMPI_COMM_WORLD_LOCAL_SIZE': '2'}, 2)])
def test_local_world_size_from_each_launcher(environ, expected):
    from mmkd_ext.launch import local_world_size
    assert local_world_size(environ) == expected


@pytest.mark.parametrize('cores, processes, current, expected', [(2, 2, 2, 1), (2, 1, 2, 2), (16, 4, 16, 4),
                                                                 (16, 4, 2, 2), (2, 8, 2, 1)])
def test_cpu_threads_share_the_cores_between_the_processes_of_a_node(cores, processes, current, expected):
    from mmkd_ext.launch import cpu_threads
    assert cpu_threads(cores, processes, current) == expected


def test_a_cpu_rank_of_two_on_two_cores_runs_one_thread_and_says_so(monkeypatch):
    """Two ranks of a node (srun, no OMP_NUM_THREADS) on a 2-core machine: one torch thread each (issue 24, item 13)."""
    import mmkd_ext.launch as launch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1})
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    set_to, logged = [], []
    monkeypatch.setattr(torch, 'set_num_threads', set_to.append)
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: logged.append(msg))
    assert launch.set_cpu_threads({'SLURM_NTASKS_PER_NODE': '2'}) == 1 and set_to == [1]
    assert '2 process(es) of this job share the 2 core(s) of this node: 1 torch thread(s) per process' in logged[0]
    assert launch.set_cpu_threads({'SLURM_NTASKS_PER_NODE': '2', 'OMP_NUM_THREADS': '2'}) is None  # the user chose
    assert launch.set_cpu_threads({}) == 2 and set_to == [1]  # one process: torch's default kept
