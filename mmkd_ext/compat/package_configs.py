"""``mmkd_ext::`` config paths, as ``mmdet::`` / ``mmpretrain::`` paths work for OpenMMLab packages.

OpenMMLab packages ship their configs inside the package (``<package>/.mim/configs``, copied there when a wheel is
built; ``setup.py`` does the same for mmkd_ext). MMEngine 0.10.7 resolves ``_base_ = 'pkg::path'`` through
``Config._get_cfg_path``, which

* asserts that the package is one of ``mmengine.config.utils.MODULE2PACKAGE`` (a fixed list of OpenMMLab
  packages), so ``mmkd_ext::`` fails with "mmengine does not support to load mmkd_ext config";
* finds the package through ``get_installed_path``, which for an editable install (PEP 660) returns
  ``site-packages/mmkd_ext``, a folder that does not exist;
* scopes every dict of the loaded file to ``_scope_='mmkd_ext'``, which is not a registry scope (mmkd_ext's
  configs name their scopes themselves: ``default_scope='mmrazor'``, ``_scope_='mmpretrain'`` on models);

and ``Config.fromfile`` does not accept ``pkg::`` paths at all. This module resolves ``mmkd_ext::rel/path.py``
to ``<imported mmkd_ext>/.mim/configs/rel/path.py`` (or, in a source checkout without ``.mim``, to the checkout's
``configs/``) in ``_get_cfg_path``, and lets ``Config.fromfile`` take ``pkg::`` paths, resolved as ``_base_``
resolves them (``mmkd_ext::`` here, ``mmpretrain::`` & co. by MMEngine).
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Tuple

PREFIX = 'mmkd_ext::'


def config_root() -> str:
    """Where mmkd_ext's configs are: ``mmkd_ext/.mim/configs`` (installed), else the checkout's ``configs/``."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(package, '.mim', 'configs'), osp.join(osp.dirname(package), 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(f'mmkd_ext has no configs: neither {package}/.mim/configs (made by building or installing '
                            f'the package) nor {osp.dirname(package)}/configs (a source checkout) exists')


def resolve(path: str) -> str:
    """The file of ``mmkd_ext::rel/path.py``; other paths unchanged."""
    if not path.startswith(PREFIX):
        return path
    resolved = osp.join(config_root(), path[len(PREFIX):])
    if not osp.isfile(resolved):
        raise FileNotFoundError(f'{path!r}: no such mmkd_ext config ({resolved} does not exist)')
    return resolved


def apply() -> List[str]:
    """Patch ``Config._get_cfg_path`` and ``Config.fromfile`` for ``mmkd_ext::`` paths (idempotent)."""
    from mmengine.config import Config
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE.setdefault('mmkd_ext', 'mmkd_ext')  # `mmengine.hub.get_config('mmkd_ext::...')` passes its check
    if getattr(Config.fromfile, '_mmkd_ext', False):
        return []
    get_cfg_path, fromfile = Config._get_cfg_path, Config.fromfile

    def _get_cfg_path(cfg_path: str, filename: str) -> Tuple[str, Optional[str]]:
        if cfg_path.startswith(PREFIX):
            return resolve(cfg_path), None  # no scope: mmkd_ext configs set their own
        return get_cfg_path(cfg_path, filename)

    def _fromfile(filename, *args, **kwargs):
        if isinstance(filename, str) and '::' in filename and not osp.isfile(filename):
            filename = _get_cfg_path(filename, '')[0]  # mmkd_ext:: here, other packages as MMEngine's _base_ does
        return fromfile(filename, *args, **kwargs)

    _fromfile._mmkd_ext = True
    Config._get_cfg_path = staticmethod(_get_cfg_path)
    Config.fromfile = staticmethod(_fromfile)
    return ['mmengine Config: mmkd_ext:: config paths (_base_), pkg:: paths in Config.fromfile']
