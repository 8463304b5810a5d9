"""No MMEngine default scope leaks from one test module into the next (issue 24, item 11).

``pytest tests/kd_zero`` failed ``KDZeroLoss is not in the mmseg::model registry``: a module fixture of
tests/kd_zero/test_seg_search.py called ``init_default_scope('mmseg')`` before conftest's per-test snapshot was
taken, so the scope outlived the module. Two tiny modules run here with tests/conftest.py as a plugin."""
import os
import subprocess
import sys

from conftest import ROOT

SETS_A_SCOPE = '''
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(scope='module')
def seg_scope():
    init_default_scope('mmseg')
    return 'mmseg'


def test_uses_the_module_scope(seg_scope):
    from mmengine.registry import DefaultScope
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
'''
BUILDS_WITHOUT_A_SCOPE = '''
def test_a_scope_less_build_finds_an_mmrazor_loss():
    from mmengine.registry import DefaultScope
    from mmkd_ext.registry import MODELS
    current = DefaultScope.get_current_instance()
    assert current is None or current.scope_name != 'mmseg', current.scope_name
    MODELS.build(dict(type='KDZeroLoss', genome=dict(knowledge='logits', distance='kl')))
'''


def test_a_scope_made_by_a_module_fixture_ends_with_its_module(tmp_path):
    (tmp_path / 'test_a_module.py').write_text(SETS_A_SCOPE)
    (tmp_path / 'test_b_module.py').write_text(BUILDS_WITHOUT_A_SCOPE)
    env = {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests'), 'OMP_NUM_THREADS': '1'}
    out = subprocess.run([sys.executable, '-m', 'pytest', '-p', 'conftest', '-p', 'no:cacheprovider', '-q',
                          '--rootdir', str(tmp_path), '-c', os.devnull, str(tmp_path / 'test_a_module.py'),
                          str(tmp_path / 'test_b_module.py')], cwd=str(tmp_path), env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and '2 passed' in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
