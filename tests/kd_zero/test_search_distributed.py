"""The search under torchrun (2 CPU ranks, gloo): candidates are claimed from a work queue, each trained once,
and the search equals the single-process one with the same seed."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

from gloo_ranks import free_port

from mmkd_ext.kd_zero.genome import SearchSpace
from mmkd_ext.kd_zero.search import DistillerSearch, EvolutionConfig, WorkQueue

HERE = osp.dirname(osp.abspath(__file__))
_spec = importlib.util.spec_from_file_location('dist_search_worker', osp.join(HERE, 'dist_search_worker.py'))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
SEARCH, Logged = worker.SEARCH, worker.Logged


def test_work_queue_without_a_process_group_is_the_whole_range():
    assert list(WorkQueue('k', 4)) == [0, 1, 2, 3]
    assert list(WorkQueue('k', 0)) == []


def test_two_ranks_claim_candidates_dynamically_and_search_like_one(tmp_path):
    out = tmp_path / 'dist'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': HERE + os.pathsep + os.environ.get('PYTHONPATH', '')}
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                           f'--master_port={free_port()}', osp.join(HERE, 'dist_search_worker.py'),
                           str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    queues = [json.loads((out / f'queue_rank{r}.json').read_text()) for r in (0, 1)]
    # rank 1 arrived 3 s late: a static split would have left items 1 and 3 to it
    assert queues[0]['first'] == [0, 1, 2, 3, 4] and queues[1]['first'] == []
    assert sorted(queues[0]['second'] + queues[1]['second']) == list(range(40))

    trained = [(out / f'trained_rank{r}.txt').read_text().split() for r in (0, 1)]
    assert trained[0] and trained[1], 'both ranks should have trained candidates'
    assert not set(trained[0]) & set(trained[1])  # no candidate trained twice
    state = json.loads((out / 'state.json').read_text())
    assert len(trained[0]) + len(trained[1]) == len(state['records'])

    single_log = tmp_path / 'single.txt'
    single = DistillerSearch(SearchSpace(), EvolutionConfig(**SEARCH), Logged(str(single_log)),
                             str(tmp_path / 'single'), progress=False)
    single.run()
    assert [r['genome'] for r in state['records']] == [r['genome'] for r in single.state['records']]
    assert state['population'] == single.state['population']
    assert state['probs'] == single.state['probs']
    assert sorted(trained[0] + trained[1]) == sorted(single_log.read_text().split())
