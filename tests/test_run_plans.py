"""Run plans (mmkd_ext/run_plans.py): the rooms register how their configs run; the config check iterates the
stages knowing no method by name; extra hooks reach every config a stage builds or runs."""
import os.path as osp
import subprocess

import pytest
from conftest import ROOT
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmkd_ext.config_check import ConfigCheck, ConfigCheckFailed, check_config
from mmkd_ext.run_plans import Plan, Stage, kind_of, plan_for, reached, register_plan, unregister_plan

DIGITS = osp.join(ROOT, 'configs', 'kd', 'resnet8x0.5_1xb32-30e_digits.py')


def test_every_room_registers_its_plan_and_kind_of_is_a_lookup():
    kinds = {path: kind_of(Config.fromfile(osp.join(ROOT, 'configs', path))) for path in (
        'fkd/labels_resnet20_m30-ms5_digits.py', 'fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py',
        'kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py', 'amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py',
        'acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py', 'kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py',
        'kd_zero/kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py')}
    assert list(kinds.values()) == ['labels', 'fkd', 'search', 'amd', 'acmkd', 'train', 'train']
    amd = plan_for(Config.fromfile(osp.join(ROOT, 'configs', 'amd', 'amd_resnet20_resnet20-p30_1xb32-6e_digits.py')))
    assert [s.name for s in amd.stages] == ['pipeline', 'test'] and 'pruned teacher' in amd.stages[0].reaches


def test_the_config_check_and_gpu_check_know_no_method_by_name():
    """Issue 28's grep finds no per-method logic: only the GPU check's list of demo config paths (data) and its
    skipped-row name."""
    pattern = r'amd\|fkd\|acmkd\|kd_zero'
    out = subprocess.run(['grep', '-rn', pattern, 'mmkd_ext/config_check', 'tools/misc/gpu_check.py'], cwd=ROOT,
                         capture_output=True, text=True).stdout.splitlines()
    code = [line.split(':', 2)[2].strip() for line in out]
    assert [c for c in code if not c.startswith("'") and 'kd_zero/det' not in c] == [], out


@pytest.fixture
def toy_plan():
    """A toy method registered by the test: warm-up training, then training that starts from the warm-up's weights."""
    def warm_up(ctx, outputs):
        return reached(dict(warm=ctx.check_train(sub_dir='warm')), 'warm weights')

    def from_warm(ctx, outputs):
        def load_warm(cfg):
            cfg.load_from = outputs['warm']
        return dict(final=ctx.check_train(sub_dir='final', prepare=load_warm))
    plan = register_plan(Plan('toy', lambda cfg: 'toy_method' in cfg, (
        Stage('warm-up', warm_up, reaches=('warm weights',)), Stage('from-warm', from_warm))))
    yield plan
    unregister_plan('toy')


def test_a_toy_method_registered_in_the_test_is_checked_stage_by_stage(toy_plan, tmp_path):
    config = tmp_path / 'toy_digits.py'
    config.write_text(f'_base_ = [{DIGITS!r}]\ntoy_method = dict(stages=2)\n')
    assert kind_of(Config.fromfile(str(config))) == 'toy'
    lines = []
    check = ConfigCheck(str(config), str(tmp_path / 'check'), shrink_inputs=True, train_only=True, log=lines.append)
    report = check.run()
    assert [s.name for s in report.steps] == ['build', 'train', 'build', 'train']
    assert 'toy job (warm-up (reaches: warm weights) > from-warm)' in lines[0]
    final = Config.fromfile(str(tmp_path / 'check' / 'final' / 'checked_config.py'))
    assert final.load_from == str(tmp_path / 'check' / 'warm' / 'epoch_1.pth')


def test_a_stage_that_misses_a_state_it_must_reach_fails_naming_it(tmp_path):
    plan = register_plan(Plan('toy-unreached', lambda cfg: 'toy_unreached' in cfg, (
        Stage('nothing', lambda ctx, outputs: {}, reaches=('a pruned teacher',)),)))
    config = tmp_path / 'toy.py'
    config.write_text(f'_base_ = [{DIGITS!r}]\ntoy_unreached = 1\n')
    try:
        with pytest.raises(ConfigCheckFailed, match=r"the nothing stage of the toy-unreached plan did not reach"):
            check_config(str(config), str(tmp_path / 'check'), log=lambda line: None)
    finally:
        unregister_plan(plan.name)


@HOOKS.register_module(force=True)
class PlanRecordingHook(Hook):
    """Writes ``work_dir<TAB>event<TAB>epoch`` for every run it is part of (a file: proxies may be other processes)."""

    def __init__(self, path: str):
        self.path = path

    def _write(self, runner, event: str) -> None:
        with open(self.path, 'a') as f:
            f.write(f'{runner.work_dir}\t{event}\t{runner.epoch}\n')

    def before_train(self, runner) -> None:
        self._write(runner, 'before_train')

    def before_train_epoch(self, runner) -> None:
        self._write(runner, 'epoch')


def _recorded(path):
    with open(path) as f:
        return [line.rstrip('\n').split('\t') for line in f]


@pytest.mark.parametrize('config, stage_dirs', [
    ('amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py', ['amd/joint_1', 'amd/final']),
    ('acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py', ['.']),
    ('kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py', ['search', 'best']),
    ('fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py', ['train']),
])
def test_extra_hooks_reach_every_stage_of_every_plan(config, stage_dirs, tmp_path):
    path = str(tmp_path / 'calls.tsv')
    work = tmp_path / 'check'
    report = check_config(osp.join(ROOT, 'configs', config), str(work), shrink_inputs=True,
                          extra_hooks=[dict(type='PlanRecordingHook', path=path)])
    assert 'test' in [s.name for s in report.steps]
    calls = _recorded(path)
    started = [osp.relpath(w, work) for w, event, _ in calls if event == 'before_train']
    for stage in stage_dirs:  # a run in the stage's folder or below it (KD-Zero's proxies: below search/)
        assert any(s == stage or s.startswith(stage + '/') for s in started), (stage, started)
    if config.startswith('acmkd'):  # the resume trains the epoch after teacher_attention_epochs=1, with the hook
        assert started == ['.', '.'] and ['epoch', '1'] in [call[1:] for call in calls]
