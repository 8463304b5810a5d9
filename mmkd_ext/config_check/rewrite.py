"""Config rewriting of the config check: stand-in data, one visualizer per check, no DataLoader workers, detectors'
``score_thr`` at 0, extra hooks in every config."""
from __future__ import annotations

import itertools
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Sequence

from mmengine.config import Config

from ..demo_data import make_cityscapes_scenes, make_digits, make_shapes_coco
from ..demo_data.standin import STANDIN_BASE, make_standin, register_standin_datasets, standin_roots

# demo data roots as the configs name them (relative: made under the current working directory, where the
# configs' relative paths point)
DEMO_MAKERS = {'data/demo/digits': make_digits, 'data/demo/shapes': make_shapes_coco,
               'data/demo/cityscapes': make_cityscapes_scenes}


def _rewrite_strings(node: Any, mapping: Dict[str, str]) -> Any:
    """Replace the prefix of every string below ``node`` that starts with a key of ``mapping``."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = _rewrite_strings(node[key], mapping)
        return node
    if isinstance(node, list):
        return [_rewrite_strings(v, mapping) for v in node]
    if isinstance(node, tuple):
        return tuple(_rewrite_strings(v, mapping) for v in node)
    if isinstance(node, str):
        for real, standin in mapping.items():
            if node == real or node.startswith(real.rstrip('/') + '/'):
                return standin + node[len(real.rstrip('/')):]
    return node


def _data_roots_used(cfg: Config) -> List[str]:
    """The real and demo dataset roots named in ``cfg`` (as a whole string or a path prefix)."""
    text = cfg.pretty_text
    return [r for r in list(standin_roots()) + list(DEMO_MAKERS) if re.search(f'[\'"]{re.escape(r)}[/\'"]', text)]


def point_at_standin_data(cfg: Config, base: str = STANDIN_BASE) -> List[str]:
    """Redirect the real dataset roots of ``cfg`` to generated stand-ins (demo roots: generate the demo data).

    Returns:
        The stand-in roots in use.
    """
    used = []
    mapping = {}
    for root in _data_roots_used(cfg):
        if root in DEMO_MAKERS:
            used.append(DEMO_MAKERS[root](osp.abspath(root)))
        else:
            mapping[root] = standin_roots(base)[root]
            used.append(make_standin(root, base))
    for key in list(cfg.keys()):
        cfg[key] = _rewrite_strings(cfg[key], mapping)
    register_standin_datasets()
    _swap_checksummed_datasets(cfg)
    return used


def config_dicts(node: Any) -> Iterator[dict]:
    """Every dict below ``node`` (a ``Config``, or a part of one), depth first, a dict before its values.

    A caller may change a dict it is handed: its values are visited after, as they are then.
    """
    if isinstance(node, Config):  # not a dict: its top-level keys
        yield from config_dicts([node[key] for key in list(node.keys())])
    elif isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from config_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from config_dicts(value)


def _swap_checksummed_datasets(cfg: Config) -> None:
    """CIFAR-100 verifies the md5 of the published files: read stand-ins with ``CIFAR100StandIn`` (README says so)."""
    for d in config_dicts(cfg):
        if str(d.get('type', '')).split('.')[-1] in ('CIFAR100', 'CIFAR10'):
            d['type'] = str(d['type']).split('.')[-1] + 'StandIn'


_VISUALIZER_IDS = itertools.count()


def name_visualizer_uniquely(cfg: Config) -> None:
    """A visualizer name of its own for each checked config. MMEngine keeps one visualizer per class and name per
    process and hands an existing one back; hooks such as MMRazor's ``RazorVisualizationHook`` draw with the latest
    one *created*. A detection check after another detection check and a classification one in the same process got
    the old ``DetLocalVisualizer`` back and its hook the plain ``Visualizer`` (TypeError on ``out_file``)."""
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = f"{cfg.visualizer.get('name') or 'visualizer'}_check{next(_VISUALIZER_IDS)}"


def quiet_loaders(cfg: Config) -> None:
    """No DataLoader worker processes anywhere in the config (a check on a few images; workers add start-up time)."""
    for node in config_dicts(cfg):
        if 'num_workers' in node:
            node['num_workers'] = 0
            if 'persistent_workers' in node:
                node['persistent_workers'] = False


def zero_score_thresholds(model: Any) -> bool:
    """Set every ``score_thr`` of the model's test settings to 0 (randomly initialised detectors score every box
    below the usual 0.05, COCO evaluation then has no result to score). Returns whether any was set."""
    found = False
    if isinstance(model, dict):
        for key, value in model.items():
            if key == 'score_thr' and isinstance(value, (int, float)):
                model[key] = 0.0
                found = True
            else:
                found = zero_score_thresholds(value) or found
    elif isinstance(model, (list, tuple)):
        for value in model:
            found = zero_score_thresholds(value) or found
    return found


def add_extra_hooks(cfg: Config, hooks: Sequence[dict]) -> None:
    """Append each of ``hooks`` to ``cfg.custom_hooks`` unless an equal hook is there already (a config the check
    built from an earlier stage's config, e.g. KD-Zero's best distiller from the base config, carries them)."""
    if not hooks:
        return
    custom = list(cfg.get('custom_hooks') or [])
    for hook in hooks:
        if dict(hook) not in [dict(h) for h in custom]:
            custom.append(dict(hook))
    cfg.custom_hooks = custom
