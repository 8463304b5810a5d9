"""tools/misc/check_config.py as a user calls it: typo'd paths, no config, --work-dir with several configs, and where
its demo data and times file go (issue 24, item 8)."""
import importlib.util
import json
import os.path as osp

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location('check_config_tool', osp.join(ROOT, 'tools', 'misc', 'check_config.py'))
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)

DIGITS = osp.join(ROOT, 'configs', 'kd', 'resnet8x0.5_1xb32-30e_digits.py')


def test_no_config_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main([])
    assert exit_info.value.code == 2
    assert 'give at least one CONFIG' in capsys.readouterr().err


def test_a_typo_is_named_the_other_configs_run_in_sub_folders_and_files_stay_under_the_cwd(tmp_path, monkeypatch,
                                                                                          capsys):
    """One typo'd path of two: named, the other config still checked (in WORK_DIR/<name>), exit 1 at the end with
    one summary line per config; demo data made under the current directory, the times file in --work-dir."""
    monkeypatch.chdir(tmp_path)
    typo = osp.join(ROOT, 'configs', 'kd', 'resnet8x05_1xb32-30e_digits.py')
    assert tool.main([typo, DIGITS, '--shrink', '--work-dir', 'out']) == 1
    out, err = capsys.readouterr()
    assert f'[check] {typo}: no such config file' in err
    summary = {line.split()[-1]: line.split()[1] for line in (out + err).splitlines()
               if line.startswith(('[check] ok', '[check] no such'))}
    assert summary == {typo: 'no', DIGITS: 'ok'}, out + err
    assert osp.isfile(tmp_path / 'out' / 'resnet8x0.5_1xb32-30e_digits' / 'checked_config.py')
    assert osp.isdir(tmp_path / 'data' / 'demo' / 'digits')  # not the package's data/demo
    with open(tmp_path / 'out' / 'config_check_times.json') as f:
        steps = json.load(f)[osp.relpath(DIGITS, ROOT)]
    assert list(steps) == ['build', 'train', 'val', 'checkpoint', 'resume', 'test']


def test_work_dir_of_one_or_several_configs():
    assert tool.work_dir_of('configs/kd/a.py', 'w', several=False) == 'w'
    assert tool.work_dir_of('configs/kd/a.py', 'w', several=True) == osp.join('w', 'a')
    assert tool.work_dir_of('mmrazor::distill/b.py', 'w', several=True) == osp.join('w', 'b')
    assert tool.work_dir_of('configs/kd/a.py', None, several=True) is None
