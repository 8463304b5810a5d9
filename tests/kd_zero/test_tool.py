"""tools/kd_zero/search.py end to end on a slice of the digits pair: outputs, resumability, Rand-KD."""
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
from gloo_ranks import free_port
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'kd_zero', 'search.py')
CONFIG = osp.join(ROOT, 'configs', 'kd_zero', 'search_kd_zero_resnet20_resnet8x0.5_digits.py')
TINY = ['search.population_size=2', 'search.iterations=0', 'search.parents=2', 'proxy.fraction=0.033',
        'proxy.rejection.min_drop=-10',  # collapse rule off: 2 iterations are too few to judge
        'proxy.fitness_samples=40', 'proxy.min_accuracy=0',  # fitness: 1 in 5 held-out training images
        'proxy.cfg_options.model.teacher_ckpt=None', 'proxy.cfg_options.train_dataloader.dataset.indices=64']


def run_tool(*args):
    argv = sys.argv
    sys.argv = [TOOL, *args]
    try:
        return runpy.run_path(TOOL, run_name='kd_zero_search_tool')['main']()
    finally:
        sys.argv = argv


def test_search_tool_writes_state_plots_and_a_trainable_config(tmp_path, digits_root):
    work = str(tmp_path / 'search')
    # model.teacher_ckpt is a key of the base config: it goes to proxy.cfg_options and into the best config
    tiny = [o if o != 'proxy.cfg_options.model.teacher_ckpt=None' else 'model.teacher_ckpt=None' for o in TINY]
    out = run_tool(CONFIG, '--work-dir', work, '--cfg-options', *tiny)
    for name in ('search_state.json', 'candidates.json', 'fitness.png', 'op_frequency.png', 'best_genome.json',
                 'best_distiller_config.py'):
        assert osp.isfile(osp.join(work, name)), name
    with open(osp.join(work, 'candidates.json')) as f:
        records = json.load(f)
    assert len(records) >= 2 and all(set(r['result']['terms']) == {'ce', 'sharpness_gap', 'cka', 'accuracy'}
                                     for r in records if r['result']['status'] == 'ok')
    cfg = Config.fromfile(osp.join(work, 'best_distiller_config.py'))
    assert cfg.kd_zero_genome == out['best']['genome']
    assert cfg.model.type == 'SingleTeacherDistill' and cfg.train_cfg.max_epochs == 30
    assert cfg.model.teacher_ckpt is None  # the teacher the search used, not the base config's file
    # a second call finds the finished state and trains nothing more
    again = run_tool(CONFIG, '--work-dir', work, '--cfg-options', *tiny)
    assert again['best'] == out['best']
    # a third one with another proxy setting is refused before anything trains
    with pytest.raises(ValueError, match=r"other settings: \['proxy.fraction'\] changed"):
        run_tool(CONFIG, '--work-dir', work, '--cfg-options', *tiny, 'proxy.fraction=0.1')


def test_search_tool_under_torchrun_splits_proxy_runs_over_two_ranks(tmp_path, digits_root):
    work = tmp_path / 'dist'
    opts = [*TINY, 'search.iterations=2', 'search.offspring_per_generation=2']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                           f'--master_port={free_port()}', TOOL, CONFIG, '--work-dir', str(work),
                           '--launcher', 'pytorch', '--cfg-options', *opts],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(work / 'search_state.json') as f:
        state = json.load(f)
    assert state['iterations_done'] == 2 and len(state['records']) >= 4
    assert (work / 'best_distiller_config.py').is_file()
    # the candidates were claimed from the work queue by both ranks
    assert 'rank 0 trained' in proc.stdout and 'rank 1 trained' in proc.stdout, proc.stdout[-2000:]


def test_help_tells_where_the_search_writes(capsys):
    """``-h`` used to promise work_dirs/<config name> while the config's work_dir wins."""
    from tools.kd_zero.search import parse_args, resolve_work_dir
    with pytest.raises(SystemExit):
        parse_args(['-h'])
    assert "the config's work_dir" in ' '.join(capsys.readouterr().out.split())
    cfg = Config.fromfile(CONFIG)
    assert resolve_work_dir(parse_args([CONFIG]), cfg, 'evolution') == cfg.work_dir
    assert resolve_work_dir(parse_args([CONFIG]), cfg, 'random') == cfg.work_dir + '_rand_kd'
    assert resolve_work_dir(parse_args([CONFIG, '--work-dir', 'w']), cfg, 'random') == 'w'


def test_dist_timeout_is_an_option_with_a_long_default(monkeypatch):
    import datetime

    from tools.kd_zero import search as tool
    assert tool.parse_args([CONFIG]).dist_timeout == 24 * 3600
    calls = []
    monkeypatch.setattr(tool.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(tool.dist, 'init_process_group', lambda **kw: calls.append(kw))
    tool.start_process_group('pytorch', tool.parse_args([CONFIG, '--dist-timeout', '7200']).dist_timeout)
    assert calls == [dict(backend='gloo', timeout=datetime.timedelta(hours=2))]


def test_missing_teacher_error_names_the_keys_that_work(tmp_path):
    from mmkd_ext.weight_sources import WeightsUnavailable
    from tools.kd_zero import search as tool
    cfg = Config.fromfile(CONFIG)
    base = Config.fromfile(cfg.base_config)
    base.model.teacher_ckpt = str(tmp_path / 'missing.pth')
    with pytest.raises(WeightsUnavailable, match=r'model.teacher_ckpt=PATH on search.py .*'
                                                 r'proxy.cfg_options.model.teacher_ckpt in the search config'):
        tool.check_teacher_available(base)
    search, forwarded = tool.route_cfg_options(cfg, {'model.teacher_ckpt': 't.pth', 'proxy.fraction': 0.1})
    assert search == {'proxy.fraction': 0.1} and forwarded == {'model.teacher_ckpt': 't.pth'}
