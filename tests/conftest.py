"""Shared fixtures: the repository root, built-in demo data, and config helpers."""
import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # `from conftest import ...`, test-only modules
os.chdir(ROOT)  # configs use data/demo/... relative to the repository root

import mmkd_ext  # noqa: E402,F401

if os.environ.get('PYTEST_XDIST_WORKER'):  # `make test` runs the config checks in two workers on two cores
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def digits_root():
    from mmkd_ext.demo_data import make_digits
    return make_digits(osp.join(ROOT, 'data/demo/digits'))


@pytest.fixture(scope='session')
def shapes_root():
    from mmkd_ext.demo_data import make_shapes_coco
    return make_shapes_coco(osp.join(ROOT, 'data/demo/shapes'))


@pytest.fixture(scope='session')
def cityscapes_root():
    from mmkd_ext.demo_data import make_cityscapes_scenes
    return make_cityscapes_scenes(osp.join(ROOT, 'data/demo/cityscapes'))


@pytest.fixture
def single_torch_thread():
    """One intra-op thread: on the shared 2-core machine two spinning threads make small models ~10-30x slower;
    restored afterwards."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config_path(*parts):
    return osp.join(ROOT, 'configs', *parts)
