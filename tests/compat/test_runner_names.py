"""Two Runners of one config built within the same second (mmkd_ext/compat/runner_names.py).

MMEngine 0.10.7 named both ``<config>_<timestamp>`` and handed the second Runner the first one's visualizer: its
``vis_data`` went to the first Runner's folder, or ``FileNotFoundError`` once that folder was gone (seen in
``pytest tests/fkd`` on a fresh clone)."""
import os.path as osp
import shutil
import time

from conftest import config_path
from mmengine.config import Config
from mmengine.runner import Runner

from mmkd_ext.compat import runner_names

CONFIG = config_path('kd', 'resnet8x0.5_1xb32-30e_digits.py')
SECOND = '20261206_073054'


def runner(work_dir):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(work_dir)
    return Runner.from_cfg(cfg)


def vis_dir(r):
    return r.visualizer._vis_backends['LocalVisBackend']._save_dir


def test_a_second_runner_in_the_same_second_gets_its_own_names_visualizer_and_folder(tmp_path, monkeypatch,
                                                                                   digits_root):
    real_strftime = time.strftime
    monkeypatch.setattr(time, 'strftime', lambda fmt, t=None: SECOND if fmt == '%Y%m%d_%H%M%S' else
                        real_strftime(fmt, *([] if t is None else [t])))
    first = runner(tmp_path / 'a')
    shutil.rmtree(tmp_path / 'a')  # the first run's folder is gone (a test's tmp dir, a deleted work dir)
    second = runner(tmp_path / 'b')  # MMEngine: FileNotFoundError writing a/<ts>/vis_data/config.py
    third = runner(tmp_path / 'c')
    assert first.timestamp.startswith(SECOND) and second.timestamp.startswith(SECOND)
    assert len({first.timestamp, second.timestamp, third.timestamp}) == 3
    assert len({first.experiment_name, second.experiment_name, third.experiment_name}) == 3
    assert second.visualizer is not first.visualizer and second.logger is not first.logger
    assert vis_dir(second).startswith(str(tmp_path / 'b')) and vis_dir(third).startswith(str(tmp_path / 'c'))
    assert osp.isfile(osp.join(vis_dir(second), 'config.py')) and osp.isfile(osp.join(vis_dir(third), 'config.py'))


def test_unique_timestamp_suffixes_only_repeats_of_the_same_second():
    first = runner_names.unique_timestamp('20990101_000000')
    assert first == '20990101_000000'
    assert runner_names.unique_timestamp('20990101_000000') == '20990101_000000_1'
    assert runner_names.unique_timestamp('20990101_000000') == '20990101_000000_2'
    assert runner_names.unique_timestamp('20990101_000001') == '20990101_000001'
    assert runner_names.unique_timestamp('20990101_000001') == '20990101_000001_1'
