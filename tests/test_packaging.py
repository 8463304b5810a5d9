"""The built wheel ships the configs (``mmkd_ext/.mim/configs``): from a fresh venv, ``mmkd_ext::`` paths load
(``Config.fromfile`` and ``_base_``) and a demo config trains by its ``mmkd_ext::`` path."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import zipfile

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SOURCES = ('mmkd_ext', 'configs', 'requirements', 'setup.py', 'MANIFEST.in', 'README.md', 'pyproject.toml')

TRAIN = """
import os.path as osp, sys
import mmkd_ext
from mmengine.config import Config
from mmengine.runner import Runner
assert mmkd_ext.__file__.startswith(sys.prefix), mmkd_ext.__file__  # the wheel's copy, not the checkout's
cfg = Config.fromfile('user_config.py')  # _base_ = 'mmkd_ext::...'
direct = Config.fromfile('mmkd_ext::kd/resnet8x0.5_1xb32-30e_digits.py')
assert direct.model.backbone.arch == cfg.model.backbone.arch == 'resnet8x0.5'
assert osp.dirname(direct.filename).endswith(osp.join('mmkd_ext', '.mim', 'configs', 'kd')), direct.filename
Runner.from_cfg(cfg).train()
print('TRAINED', osp.isfile('work_dirs/wheel/epoch_1.pth'))
"""
USER_CONFIG = """
_base_ = ['mmkd_ext::kd/resnet8x0.5_1xb32-30e_digits.py']
train_dataloader = dict(dataset=dict(indices=64))  # 2 iterations
val_dataloader = dict(dataset=dict(indices=20))
train_cfg = dict(max_epochs=1, val_interval=1)
work_dir = 'work_dirs/wheel'
log_level = 'WARNING'
"""


def copy_sources(dst: str) -> None:
    """The files a wheel is built from, without caches or a checkout's ``.mim`` link."""
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info')
    for name in SOURCES:
        src = osp.join(ROOT, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dst, name), ignore=ignore)
        else:
            shutil.copy(src, dst)


def fresh_venv(path: str) -> str:
    """A venv without pip whose packages are its own site-packages, then our pinned stack (a ``.pth`` line)."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', path], check=True)
    python = osp.join(path, 'bin', 'python')
    site = subprocess.run([python, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    with open(osp.join(site, 'pinned_stack.pth'), 'w') as f:  # a plain path line: the stack's own .pth files
        f.write(sysconfig.get_paths()['purelib'] + '\n')         # (e.g. an editable mmkd_ext) are not run
    return python


def test_wheel_ships_configs_and_trains_a_config_by_its_mmkd_ext_path(tmp_path, digits_root):
    src, dist = str(tmp_path / 'src'), str(tmp_path / 'dist')
    copy_sources(src)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q',
                    '-w', dist, src], check=True)
    wheel = osp.join(dist, os.listdir(dist)[0])
    names = zipfile.ZipFile(wheel).namelist()
    assert 'mmkd_ext/.mim/configs/kd/resnet8x0.5_1xb32-30e_digits.py' in names
    assert 'mmkd_ext/.mim/configs/_base_/default_runtime.py' in names
    python = fresh_venv(str(tmp_path / 'venv'))
    site = subprocess.run([python, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    # --target: installs into the fresh venv only, never touching the stack's (editable) mmkd_ext
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', '--target', site, wheel],
                   check=True)
    run_dir = tmp_path / 'run'
    (run_dir / 'data' / 'demo').mkdir(parents=True)
    os.symlink(digits_root, run_dir / 'data' / 'demo' / 'digits')  # configs read data/demo/... from the cwd
    (run_dir / 'user_config.py').write_text(USER_CONFIG)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    out = subprocess.run([python, '-c', TRAIN], cwd=str(run_dir), env=dict(env, OMP_NUM_THREADS='1'),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'TRAINED True' in out.stdout
