"""Old OpenMMLab names in MMRazor 1.0.0's configs, resolved to their successors from one table.

MMRazor 1.0.0 was written for mmcls 1.0.0rc and mmdet 3.0.0rc. Since then mmcls became mmpretrain
(which alone pairs with mmcv 2.1) and a few config files and registered classes were renamed, so
MMRazor's shipped configs stop at ``Config.fromfile`` (``ModuleNotFoundError: mmcls is not
installed``) or at a missing base file. :data:`RENAMES` lists every old name with its successor and
the reason; :func:`apply` makes MMEngine resolve them:

* a config path ``mmcls::X`` loads ``mmpretrain::X`` (``_base_`` lists and the ``cfg_path`` of
  model dicts, i.e. ``Config._get_cfg_path`` and ``mmengine.hub.get_config`` / ``get_model``), and
  a renamed config file (mmcls or mmdet) loads its successor;
* the scope ``mmcls`` (``default_scope``, ``_scope_``, ``type='mmcls.Name'``) is the scope
  ``mmpretrain`` (``DefaultScope`` and ``Registry.get``);
* a renamed registry name (``PackClsInputs``) is looked up under its successor, and only when the
  registry does not know the old name: nothing is registered twice, registries list the same
  modules as before, and every name upstream resolves resolves to the same class.

Paths, scopes and names that upstream resolves are never rewritten (a test checks every table entry
against the installed packages). Not applied when mmcls itself is installed.
"""
from __future__ import annotations

import functools
import importlib.util
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple


class Rename(NamedTuple):
    """One old name and its successor.

    Attributes:
        kind: ``'scope'`` (a package / registry scope), ``'class'`` (a registered name),
            ``'config'`` (a ``package::path`` config file), ``'base'`` (an MMRazor class whose mmcls
            base class is now ``new``: rebuilt on it, keeping the members named in ``keep``) or ``'global'``
            (a module attribute MMRazor set to a placeholder because its mmcls source is missing).
        old: the name MMRazor 1.0.0's configs use.
        new: the name the installed packages use.
        reason: why it changed, with the upstream reference.
        keep: for ``'base'``: the members of the old class that the rebuilt class keeps.
    """
    kind: str
    old: str
    new: str
    reason: str
    keep: Tuple[str, ...] = ()


RENAMES = (
    Rename('scope', 'mmcls', 'mmpretrain',
           'MMClassification 1.x was renamed MMPreTrain (mmpretrain 1.0.0rc7, open-mmlab/mmpretrain#1474); '
           'mmcls 1.0.0rc requires mmcv<2.1, mmpretrain 1.2 pairs with the mmcv 2.1 mmdet/mmseg need'),
    Rename('class', 'PackClsInputs', 'PackInputs',
           'mmpretrain packs every task with one transform since ClsDataSample became DataSample '
           '(open-mmlab/mmpretrain#1371)'),
    Rename('class', 'ClsVisualizer', 'UniversalVisualizer',
           'mmpretrain has one visualizer for classification, retrieval and self-supervision'),
    Rename('config', 'mmcls::deit/deit-base_pt-16xb64_in1k.py', 'mmpretrain::deit/deit-base_16xb64_in1k.py',
           "mmpretrain dropped the '_pt' tag; its DeiT metafile gives deit-base_16xb64_in1k the same "
           'checkpoint, deit-base_pt-16xb64_in1k_20220216-db63c16c.pth'),
    Rename('config', 'mmdet::faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py',
           'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
           "mmdet 3.0 renamed config files: the algorithm name takes hyphens ('faster-rcnn')"),
    Rename('config', 'mmdet::faster_rcnn/faster_rcnn_r101_fpn_2x_coco.py',
           'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
           "mmdet 3.0 renamed config files: the algorithm name takes hyphens ('faster-rcnn')"),
    Rename('base', 'mmrazor.DeiTClsHead', 'mmpretrain.DeiTClsHead',
           "MMRazor's DeiTClsHead subclasses mmcls's VisionTransformerClsHead, a placeholder that raises "
           "without mmcls; mmpretrain's DeiTClsHead has the same layers (head, head_dist) and reads "
           "mmpretrain's (cls, dist) token pair; MMRazor's forward is kept (cls-token logits, head_dist run "
           'for the distillation recorder)', keep=('forward', )),
    Rename('base', 'mmrazor.PackCRDClsInputs', 'mmpretrain.PackInputs',
           "MMRazor's CRD transform subclasses mmcls's PackClsInputs, now mmpretrain's PackInputs "
           '(open-mmlab/mmpretrain#1371); its transform (sample and contrast indices) is kept', keep=('transform', )),
    Rename('global', 'mmrazor.datasets.transforms.formatting.to_tensor',
           'mmpretrain.datasets.transforms.formatting.to_tensor',
           "PackCRDClsInputs.transform calls mmcls's to_tensor, which mmpretrain kept under the same name"),
    Rename('global', 'mmrazor.datasets.transforms.formatting.ClsDataSample', 'mmpretrain.structures.DataSample',
           "PackCRDClsInputs.transform builds mmcls's ClsDataSample, which became mmpretrain's DataSample (same "
           'set_gt_label / set_data / set_metainfo; open-mmlab/mmpretrain#1371)'),
)


def _table(kind: str) -> Dict[str, str]:
    return {r.old: r.new for r in RENAMES if r.kind == kind}


SCOPES = _table('scope')
CLASSES = _table('class')
CONFIGS = _table('config')


def canonical_scope(scope: Optional[str]) -> Optional[str]:
    """The installed scope for ``scope`` (``'mmcls'`` -> ``'mmpretrain'``); others unchanged."""
    return SCOPES.get(scope, scope)


def successor_cfg_path(cfg_path: str) -> str:
    """The config path the installed packages hold for an old ``package::path``.

    Args:
        cfg_path: a config path, e.g. ``'mmcls::resnet/resnet18_8xb32_in1k.py'``.

    Returns:
        The renamed file if the table has one, else the path with its package scope made canonical
        (``'mmpretrain::resnet/resnet18_8xb32_in1k.py'``); paths without ``::`` unchanged.
    """
    if cfg_path in CONFIGS:
        return CONFIGS[cfg_path]
    scope, sep, rel = cfg_path.partition('::')
    if not sep or scope not in SCOPES:
        return cfg_path
    return CONFIGS.get(f'{SCOPES[scope]}::{rel}', f'{SCOPES[scope]}::{rel}')


def successor_key(key: str) -> str:
    """A registry key with an old scope prefix made canonical (``'mmcls.ResNet'`` -> ``'mmpretrain.ResNet'``)."""
    scope, sep, name = key.partition('.')
    if sep and scope in SCOPES:
        return f'{SCOPES[scope]}.{name}'
    return key


def renamed_key(key: str) -> Optional[str]:
    """The successor of a renamed class key (scope prefix kept), or None if the table has none."""
    scope, sep, name = key.rpartition('.')
    if name not in CLASSES:
        return None
    return f'{scope}{sep}{CLASSES[name]}'


def scoped_by_type_prefix(cfg):
    """``dict(type='mmcls.X', ...)`` as ``dict(_scope_='mmpretrain', type='X', ...)``; other configs unchanged.

    mmcls 1.0.0rc classes pinned the defaults they build to their own scope
    (``data_preprocessor.setdefault('type', 'mmcls.ClsDataPreprocessor')``); mmpretrain's do not
    (``'ClsDataPreprocessor'``), so an ``mmcls.ImageClassifier`` built from MMRazor's scope would
    look its preprocessor up in MMRazor's registry. Building it in the mmpretrain scope restores
    what the mmcls prefix meant. A config that sets ``_scope_`` itself is left alone.

    Args:
        cfg: the config ``Registry.build`` received (dict-like, or anything else).

    Returns:
        ``cfg`` itself, or a shallow copy with ``_scope_`` set and the prefix removed.
    """
    if not isinstance(cfg, dict) or '_scope_' in cfg or not isinstance(cfg.get('type'), str):
        return cfg
    scope, sep, name = cfg['type'].partition('.')
    if not sep or scope not in SCOPES:
        return cfg
    cfg = cfg.copy()
    cfg.update(_scope_=SCOPES[scope], type=name)
    return cfg


def _wrap_cfg_path_arg(fn: Callable) -> Callable:
    """``fn(cfg_path, ...)`` that first maps an old config path to its successor."""

    @functools.wraps(fn)
    def wrapper(cfg_path, *args, **kwargs):
        return fn(successor_cfg_path(cfg_path), *args, **kwargs)

    return wrapper


def _patch_config_paths() -> List[str]:
    import mmengine.hub
    import mmengine.hub.hub
    from mmengine.config import Config

    Config._get_cfg_path = staticmethod(_wrap_cfg_path_arg(Config._get_cfg_path))
    patched = ['mmengine Config._get_cfg_path']
    for module in (mmengine.hub.hub, mmengine.hub):
        for name in ('get_config', 'get_model'):
            setattr(module, name, _wrap_cfg_path_arg(getattr(module, name)))
            patched.append(f'{module.__name__}.{name}')
    return patched


def _patch_scopes_and_registries() -> List[str]:
    from mmengine.registry import DefaultScope, Registry

    scope_init = DefaultScope.__init__

    @functools.wraps(scope_init)
    def init(self, name: str, scope_name: str):
        scope_init(self, name, canonical_scope(scope_name))

    DefaultScope.__init__ = init

    registry_get = Registry.get

    @functools.wraps(registry_get)
    def get(self, key):
        if not isinstance(key, str):
            return registry_get(self, key)
        key = successor_key(key)
        obj = registry_get(self, key)
        new_key = renamed_key(key) if obj is None else None
        return registry_get(self, new_key) if new_key is not None else obj

    Registry.get = get

    registry_build = Registry.build

    @functools.wraps(registry_build)
    def build(self, cfg, *args, **kwargs):
        return registry_build(self, scoped_by_type_prefix(cfg), *args, **kwargs)

    Registry.build = build
    return ['mmengine DefaultScope (scope names)', 'mmengine Registry.get (old scopes and class names)',
            "mmengine Registry.build (type='mmcls.X' builds in the mmpretrain scope)"]


def _is_placeholder_based(cls: type) -> bool:
    """Whether ``cls`` subclasses an MMRazor ``get_placeholder`` class (its upstream base is missing)."""
    return any(base.__name__ == 'PlaceHolder' for base in cls.__mro__[1:])


def _rebase_mmrazor_classes() -> List[str]:
    """Re-register each ``'base'`` entry's MMRazor class on its mmpretrain base (same registry name).

    Needs ``mmrazor.models`` importable, i.e. :mod:`.torch_quantization` applied first.
    """
    import mmrazor.datasets  # noqa: F401  (registers MMRazor's transforms)
    import mmrazor.models  # noqa: F401  (registers MMRazor's classes)
    from mmrazor.registry import MODELS, TRANSFORMS

    rebased = []
    for entry in RENAMES:
        if entry.kind != 'base':
            continue
        registry = MODELS if MODELS.get(entry.old) is not None else TRANSFORMS
        old = registry.get(entry.old)
        if old is None or not _is_placeholder_based(old):
            continue
        members = {name: vars(old)[name] for name in entry.keep}
        cls = type(old.__name__, (registry.get(entry.new), ), dict(members, __doc__=old.__doc__,
                                                                    __module__=old.__module__))
        registry.register_module(name=old.__name__, module=cls, force=True)
        rebased.append(f'{entry.old} on {entry.new}')
    return rebased


def _is_placeholder(value: Any) -> bool:
    """Whether ``value`` is what MMRazor's ``get_placeholder`` / ``get_package_placeholder`` return."""
    return getattr(value, '__name__', '') == 'PlaceHolder' or type(value).__name__ == 'PlaceHolderMetaclass'


def _replace_placeholder_globals() -> List[str]:
    """Set each ``'global'`` entry's module attribute to its successor, where MMRazor left a placeholder."""
    replaced = []
    for entry in RENAMES:
        if entry.kind != 'global':
            continue
        module_name, _, name = entry.old.rpartition('.')
        module = importlib.import_module(module_name)
        if not _is_placeholder(getattr(module, name, None)):
            continue
        new_module, _, new_name = entry.new.rpartition('.')
        setattr(module, name, getattr(importlib.import_module(new_module), new_name))
        replaced.append(f'{entry.old} -> {entry.new}')
    return replaced


def apply() -> List[str]:
    """Make MMEngine resolve the old names of :data:`RENAMES` (once; nothing if mmcls is installed).

    Returns:
        What was patched, for :data:`mmkd_ext.compat.APPLIED`.
    """
    if importlib.util.find_spec('mmcls') is not None:
        return []
    return (_patch_config_paths() + _patch_scopes_and_registries() + _rebase_mmrazor_classes()
            + _replace_placeholder_globals())
