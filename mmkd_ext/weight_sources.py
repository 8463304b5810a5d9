"""Every weight file a config would load, found before anything is built: no download and no missing file surprises.

A config names weights in these places: ``teacher_ckpt`` (MMRazor algorithms; ``ckpt_path`` of DataFreeDistillation's
teachers), ``teachers[*].checkpoint`` (FKD label generation), ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and
``pretrained='...'`` of backbones and models (also inside models referenced by ``cfg_path='mmdet::...'``, and
the metafile checkpoint of ``cfg_path`` models with ``pretrained=True``), and ``load_from``.
MMEngine resolves URL-like names (``https://``, ``open-mmlab://``, ``torchvision://``, ``mmcls://``) by downloading
into the torch hub cache at build or ``init_weights`` time; on a cluster without internet that is a ``URLError`` deep
inside a Runner.

* :func:`find_weight_refs` lists them with where they come from in the config;
* :func:`check_weights_available` (called by the tools before building) raises :class:`WeightsUnavailable` (a
  ``FileNotFoundError``) naming each weight that is missing or would be downloaded, where to put it, and how to switch
  it off; set ``MMKD_ALLOW_DOWNLOADS=1`` to let MMEngine download into the hub cache instead (each one is logged);
* :func:`replace_unavailable_weights` (used by ``tools/misc/check_config.py`` only) switches such weights to random
  initialisation, one line per weight.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional

from mmengine.logging import print_log

URL_SCHEMES = ('http://', 'https://', 'open-mmlab://', 'openmmlab://', 'torchvision://', 'modelzoo://', 'mmcls://',
               'timm://')  # timm://<model_name>: a TIMMBackbone with pretrained=True (timm reads the Hugging Face Hub)
ALLOW_DOWNLOADS_ENV = 'MMKD_ALLOW_DOWNLOADS'


class WeightsUnavailable(FileNotFoundError):
    """A weight file named by a config is missing, or would be downloaded (``MMKD_ALLOW_DOWNLOADS`` unset)."""


@dataclass
class WeightRef:
    """One weight named by a config.

    Attributes:
        where: dotted location in the config, e.g. ``model.teacher.backbone.init_cfg.checkpoint``.
        source: the file path or URL as written.
        container: the dict that holds it (replacement edits this dict).
        key: the key of ``source`` in ``container``.
        kind: ``teacher_ckpt`` | ``checkpoint`` (FKD teachers) | ``init_cfg`` | ``pretrained`` | ``load_from``.
    """
    where: str
    source: str
    container: Any
    key: str
    kind: str

    @property
    def remote(self) -> bool:
        return self.source.startswith(URL_SCHEMES)

    def local_path(self) -> str:
        """Where the weight is read from: the file itself, or the torch hub cache file of a URL."""
        return hub_cache_path(self.source) if self.remote else self.source

    def available(self) -> bool:
        if self.source.startswith('timm://'):
            return timm_weights_cached(self.source[len('timm://'):])
        return osp.isfile(self.local_path())


def _timm_hub_id(model_name: str) -> Optional[str]:
    """The Hugging Face Hub repository timm downloads ``model_name``'s default weights from (None without timm)."""
    try:
        import timm
    except ImportError:
        return None
    cfg = timm.models.get_pretrained_cfg(model_name)
    return getattr(cfg, 'hf_hub_id', None)


def timm_weights_cached(model_name: str) -> bool:
    """Whether timm's default weights of ``model_name`` are in the local Hugging Face cache (no download)."""
    hub_id = _timm_hub_id(model_name)
    if not hub_id:
        return False
    from huggingface_hub import try_to_load_from_cache
    return any(isinstance(try_to_load_from_cache(hub_id, name), str)
               for name in ('model.safetensors', 'pytorch_model.bin'))


def resolve_url(source: str) -> str:
    """The http(s) URL MMEngine downloads for ``source`` (``open-mmlab://``, ``torchvision://``, ``mmcls://``)."""
    from mmengine.runner.checkpoint import (
        get_deprecated_model_names,
        get_external_models,
        get_mmcls_models,
        get_torchvision_models,
    )
    if source.startswith(('http://', 'https://')):
        return source
    scheme, name = source.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        return get_torchvision_models().get(name, source)
    if scheme == 'mmcls':
        return get_mmcls_models().get(name, source)
    name = get_deprecated_model_names().get(name, name)
    return get_external_models().get(name, source)


def hub_cache_path(source: str) -> str:
    """The torch hub cache file MMEngine's ``load_from_http`` reads for ``source`` (``<hub>/checkpoints/<name>``)."""
    from urllib.parse import urlparse

    import torch
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(resolve_url(source)).path))


def _model_of_cfg_path(cfg_path: str) -> Optional[dict]:
    """The ``model`` dict of an external config (``mmdet::...``) with its scope, as MMEngine's ``get_model`` builds."""
    from mmengine.hub import get_config
    external = get_config(cfg_path)
    model = external.get('model')
    if model is None:
        return None
    model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
    if 'data_preprocessor' in external:
        model['data_preprocessor'] = external['data_preprocessor']
    model.setdefault('_scope_', cfg_path.split('::')[0])
    return model


# keys holding a weight file in a model dict -> the kind of weight (DataFreeDistillation names its teachers' files
# ``ckpt_path``)
WEIGHT_KEYS = (('teacher_ckpt', 'teacher_ckpt'), ('ckpt_path', 'teacher_ckpt'), ('pretrained', 'pretrained'))


def _zoo_checkpoint_of(cfg_path: str) -> Optional[str]:
    """The checkpoint ``get_model(cfg_path, pretrained=True)`` loads: the ``Weights`` of the config in its package's
    metafile (None when the metafile names none; the build then fails upstream, as it would without us)."""
    from mmengine.hub import get_config
    try:
        return get_config(cfg_path, pretrained=True).get('model_path')
    except AssertionError:  # "Cannot find `Weights` in cfg_file.metafile.yml"
        return None


def _walk(node: Any, where: str, visit: Callable[[dict, str], None]) -> None:
    if isinstance(node, dict):
        visit(node, where)
        for key, value in list(node.items()):
            _walk(value, f'{where}.{key}' if where else str(key), visit)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _walk(value, f'{where}[{i}]', visit)


def iter_weight_refs(node: Any, where: str = '') -> Iterator[WeightRef]:
    """Weight references below ``node`` (a plain dict tree), looking into ``cfg_path`` models."""
    found: List[WeightRef] = []

    def visit(d: dict, at: str) -> None:
        for key, kind in WEIGHT_KEYS:
            if isinstance(d.get(key), str) and d[key]:
                found.append(WeightRef(f'{at}.{key}', d[key], d, key, kind))
        if d.get('pretrained') is True and str(d.get('type', '')).split('.')[-1] == 'TIMMBackbone':
            found.append(WeightRef(f'{at}.pretrained', f"timm://{d.get('model_name')}", d, 'pretrained', 'pretrained'))
        if str(d.get('type', '')).split('.')[-1] == 'Pretrained' and isinstance(d.get('checkpoint'), str):
            found.append(WeightRef(f'{at}.checkpoint', d['checkpoint'], d, 'checkpoint', 'init_cfg'))
        elif isinstance(d.get('checkpoint'), str) and isinstance(d.get('model'), dict):  # FKD teachers
            found.append(WeightRef(f'{at}.checkpoint', d['checkpoint'], d, 'checkpoint', 'checkpoint'))
        if isinstance(d.get('cfg_path'), str) and not d.get('type'):
            if d.get('pretrained') is True:  # MMEngine's get_model loads the checkpoint the package's metafile names
                url = _zoo_checkpoint_of(d['cfg_path'])
                if url:
                    found.append(WeightRef(f'{at}.pretrained', url, d, 'pretrained', 'pretrained'))
            external = _model_of_cfg_path(d['cfg_path'])
            if external is not None:
                for ref in iter_weight_refs(external, f'{at}[{d["cfg_path"]}].model'):
                    ref.container = None  # lives in the external config: replaceable only after expansion
                    found.append(ref)

    _walk(node, where, visit)
    yield from found


def find_weight_refs(cfg) -> List[WeightRef]:
    """Every weight of ``cfg`` (model, FKD ``teachers``, KD-Zero ``base_config`` is not followed, ``load_from``)."""
    tree = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    refs = [ref for key in ('model', 'teachers') if key in tree for ref in iter_weight_refs(tree[key], key)]
    if isinstance(tree.get('load_from'), str) and not tree.get('resume'):
        refs.append(WeightRef('load_from', tree['load_from'], tree, 'load_from', 'load_from'))
    return refs


def _how_to_fix(ref: WeightRef) -> str:
    if ref.source.startswith('timm://'):
        name = ref.source[len('timm://'):]
        fix = (f'timm loads it from the Hugging Face Hub ({_timm_hub_id(name) or "timm is not installed"}): fetch '
               f'it into the Hugging Face cache on a machine with internet (timm.create_model({name!r}, '
               f'pretrained=True)) and copy the cache, or set {ALLOW_DOWNLOADS_ENV}=1 to let timm download it')
    elif ref.remote:
        url = resolve_url(ref.source)
        fix = (f'download {url} and put it at {ref.local_path()} (the torch hub cache MMEngine reads), '
               f'or set {ALLOW_DOWNLOADS_ENV}=1 to let MMEngine download it')
    else:
        fix = f'put the file at {ref.source!r} or point {ref.where.split("[")[0]} at it with --cfg-options'
    if ref.kind == 'init_cfg':
        fix += f'; to start from random weights instead, set {ref.where.rsplit(".", 1)[0]} to None'
    elif ref.kind == 'pretrained':
        off = False if ref.container is not None and ref.container.get(ref.key) is True else None
        fix += f'; to start from random weights instead, set {ref.where} to {off}'
    return fix


def unavailable_weights(cfg) -> List[WeightRef]:
    """The weights of ``cfg`` that are missing locally or would be downloaded (honouring ``MMKD_ALLOW_DOWNLOADS``)."""
    allow_downloads = os.environ.get(ALLOW_DOWNLOADS_ENV, '') not in ('', '0')
    return [ref for ref in find_weight_refs(cfg)
            if not ref.available() and not (ref.remote and allow_downloads)]


def check_weights_available(cfg) -> None:
    """Raise :class:`WeightsUnavailable` before anything is built if a weight of ``cfg`` is missing or remote.

    Args:
        cfg: a full MMEngine config.
    """
    missing = unavailable_weights(cfg)
    if missing:
        lines = [f'  - {ref.where} = {ref.source!r}: {"would be downloaded" if ref.remote else "file not found"}; '
                 f'{_how_to_fix(ref)}' for ref in missing]
        raise WeightsUnavailable(
            f'{len(missing)} weight file(s) named by the config are not on this machine and nothing is downloaded '
            'at run time:\n' + '\n'.join(lines))


def expand_cfg_path_models(node: Any) -> Any:
    """Replace each ``dict(cfg_path='pkg::...', pretrained=False, **kw)`` below ``node`` by the model dict it names.

    This is what MMEngine's ``get_model`` builds (same config, same scope), written out so that its weights can be
    edited. ``pretrained=True`` entries are left alone (they load the zoo checkpoint of that config).
    """
    if isinstance(node, dict):
        if isinstance(node.get('cfg_path'), str) and not node.get('type') and not node.get('pretrained'):
            extra = {k: v for k, v in node.items() if k not in ('cfg_path', 'pretrained')}
            model = _model_of_cfg_path(node['cfg_path'])
            if model is not None:
                model.update(extra)
                return expand_cfg_path_models(model)
        return {k: expand_cfg_path_models(v) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_cfg_path_models(v) for v in node]
    if isinstance(node, tuple):
        return tuple(expand_cfg_path_models(v) for v in node)
    return node


def replace_unavailable_weights(cfg) -> List[str]:
    """Switch every unavailable weight of ``cfg`` to random initialisation (config check only).

    ``cfg_path`` models are expanded first (:func:`expand_cfg_path_models`) so their backbones' ``init_cfg`` can be
    edited. Returns one line per replaced weight; the same lines are logged.
    """
    lines: List[str] = []
    for _ in range(3):  # a replaced ``cfg_path`` zoo checkpoint expands to a model that may name weights of its own
        if 'model' in cfg:
            cfg['model'] = expand_cfg_path_models(cfg['model'].to_dict() if hasattr(cfg['model'], 'to_dict')
                                                  else cfg['model'])
        replaced = [ref for ref in unavailable_weights(cfg) if ref.container is not None]
        if not replaced:
            break
        for ref in replaced:
            target = _container_in(cfg, ref)
            if ref.kind == 'init_cfg':
                target['type'] = '__replaced__'
            elif ref.key == 'ckpt_path':  # DataFreeDistillation loads a teacher whose dict has the key at all
                del target[ref.key]
            else:  # pretrained=True -> False (TIMMBackbone accepts only a bool), a file name -> None
                target[ref.key] = False if target[ref.key] is True else None
            lines.append(f'random init instead of {ref.where} = {ref.source!r} '
                         f'({"would be downloaded" if ref.remote else "file not found"})')
            print_log(lines[-1], logger='current', level=logging.WARNING)
        _drop_replaced_init_cfgs(cfg)
    return lines


def _container_in(cfg, ref: WeightRef) -> dict:
    """The dict of ``cfg`` (a Config) that holds ``ref`` (found again by its dotted location)."""
    node: Any = cfg
    for part in ref.where.replace('[', '.[').split('.')[:-1]:
        node = node[int(part[1:-1])] if part.startswith('[') else node[part]
    return node


def _drop_replaced_init_cfgs(cfg) -> None:
    """Remove the ``init_cfg`` entries marked by :func:`replace_unavailable_weights` (a list keeps the others)."""
    def visit(d: dict, at: str) -> None:
        init = d.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == '__replaced__':
            d['init_cfg'] = None
        elif isinstance(init, list):
            d['init_cfg'] = [i for i in init if not (isinstance(i, dict) and i.get('type') == '__replaced__')] or None
    for key in ('model', 'teachers'):
        if key in cfg:
            _walk(cfg[key], key, visit)
