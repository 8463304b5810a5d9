"""``mmkd_ext::`` config paths (mmkd_ext/compat/package_configs.py) in a source checkout: Config.fromfile and _base_."""
import os.path as osp

import pytest
from mmengine.config import Config

import mmkd_ext  # noqa: F401  (applies the patch)
from mmkd_ext.compat.package_configs import config_root

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_mmkd_ext_path_loads_the_config_of_the_checkout_with_its_bases():
    cfg = Config.fromfile('mmkd_ext::kd/resnet8x0.5_1xb32-30e_digits.py')
    by_path = Config.fromfile(osp.join(ROOT, 'configs', 'kd', 'resnet8x0.5_1xb32-30e_digits.py'))
    assert cfg.to_dict() == by_path.to_dict()
    assert osp.realpath(config_root()) == osp.realpath(osp.join(ROOT, 'configs'))


def test_base_by_mmkd_ext_path_keeps_the_scopes_of_the_config(tmp_path):
    path = tmp_path / 'user.py'
    path.write_text("_base_ = ['mmkd_ext::kd/resnet8x0.5_1xb32-30e_digits.py']\ntrain_cfg = dict(max_epochs=1)\n")
    cfg = Config.fromfile(str(path))
    assert cfg.train_cfg.max_epochs == 1 and cfg.default_scope == 'mmpretrain'
    assert cfg.model._scope_ == 'mmpretrain'
    assert cfg.train_dataloader.sampler.get('_scope_') is None  # MMEngine would scope it to 'mmkd_ext'


def test_missing_mmkd_ext_config_names_the_path():
    with pytest.raises(FileNotFoundError, match="'mmkd_ext::kd/nope.py': no such mmkd_ext config"):
        Config.fromfile('mmkd_ext::kd/nope.py')
