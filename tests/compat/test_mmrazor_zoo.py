"""Every distillation config the installed mmrazor ships loads and builds on our stack, without downloads.

33 files under ``mmrazor/.mim/configs/distill``: 31 distillation jobs build (one of them, DeiT, only with the
optional ``timm``), one dataset fragment loads, the mmdet3d one is out of scope and fails for that reason.
Weights a config would download are switched off first (one printed line each); models are built at random init,
never run.
"""
import functools
import importlib.util

import mmengine.config.utils
import pytest
from mmengine.registry import DefaultScope
from mmrazor.models.algorithms import BaseAlgorithm
from mmrazor.registry import MODELS

from mmkd_ext import mmrazor_zoo as zoo

# Counted by hand from `find mmrazor/.mim/configs/distill -name '*.py'` (mmrazor 1.0.0): 20 mmcls, 11 mmdet,
# 1 mmdet3d, 1 mmseg.
SHIPPED = {'mmcls': 20, 'mmdet': 11, 'mmdet3d': 1, 'mmseg': 1}


@pytest.fixture(scope='module', autouse=True)
def metafiles_read_once():
    """Each ``package::path`` lookup re-parses every metafile.yml of the package (~1 s for mmdet); parse each once.

    The files do not change during the test and their readers only read the parsed dicts.
    """
    cached = functools.lru_cache(maxsize=None)(mmengine.config.utils.load)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmengine.config.utils, 'load', cached)
        yield


def test_every_shipped_file_is_built_or_listed_with_a_reason():
    configs = zoo.zoo_configs()
    assert {task: sum(c.startswith(task + '/') for c in configs) for task in SHIPPED} == SHIPPED
    assert len(configs) == 33
    listed = {**zoo.OUT_OF_SCOPE, **zoo.FRAGMENTS}
    assert set(listed) <= set(configs) and set(zoo.NEEDS_PACKAGE) <= set(zoo.buildable_configs())
    assert len(zoo.buildable_configs()) == 31


@pytest.mark.parametrize('rel_path', sorted(zoo.OUT_OF_SCOPE))
def test_out_of_scope_configs_fail_for_the_stated_reason(rel_path):
    with pytest.raises(ModuleNotFoundError, match='mmdet3d is not installed'):
        zoo.load_zoo_config(rel_path)


@pytest.mark.parametrize('rel_path', sorted(zoo.FRAGMENTS))
def test_fragments_load_and_define_no_model(rel_path):
    cfg = zoo.load_zoo_config(rel_path)
    assert 'model' not in cfg and cfg.train_dataloader.dataset.type == 'CIFAR10'


def no_download_left(node):
    """True if no string in ``node`` is a URL or a checkpoint file name."""
    if isinstance(node, dict):
        return all(no_download_left(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(no_download_left(v) for v in node)
    return not (isinstance(node, str) and ('://' in node or node.endswith('.pth')))


def build(model_cfg, default_scope):
    with DefaultScope.overwrite_default_scope(default_scope):
        return MODELS.build(model_cfg)


@pytest.mark.parametrize('rel_path', zoo.buildable_configs())
def test_zoo_config_loads_and_builds(rel_path):
    cfg = zoo.load_zoo_config(rel_path)
    lines = zoo.switch_off_downloads(cfg.model)
    print('\n'.join([f'{rel_path}: {len(lines)} weight(s) switched off'] + lines))
    assert no_download_left(cfg.model)
    package = zoo.NEEDS_PACKAGE.get(rel_path)
    if package and importlib.util.find_spec(package) is None:
        with pytest.raises(ImportError, match=package):
            build(cfg.model, cfg.default_scope)
        build(cfg.model.architecture, cfg.default_scope)  # the student builds without it
        return
    model = build(cfg.model, cfg.default_scope)
    assert isinstance(model, BaseAlgorithm)
    assert sum(p.numel() for p in model.architecture.parameters()) > 0
