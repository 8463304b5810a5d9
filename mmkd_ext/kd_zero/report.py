"""Search outputs: fitness curve and operation-frequency chart (paper Fig. 5), candidates table,
and the best genome written as a ready-to-train distillation config."""
from __future__ import annotations

import json
import os.path as osp
import pprint
from typing import Dict, List, Optional

from .genome import GENES, Genome
from .proxy import distiller_cfg


def plot_fitness(history: List[dict], path: str, title: str = 'KD-Zero search') -> str:
    """PNG of the best and mean raw population fitness per generation, and the selected best's.

    Args:
        history: ``search_state['history']`` entries with generation / best / mean.
        path: output PNG path.
        title: plot title.

    Returns:
        ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [h for h in history if h.get('best') is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    x = [h['evaluated'] for h in rows]
    ax.plot(x, [h.get('min', h['best']) for h in rows], label='population best (raw fitness)', marker='.')
    ax.plot(x, [h['mean'] for h in rows], label='population mean', marker='.')
    ax.plot(x, [h['best'] for h in rows], label='selected best (ranked on z-scored terms)', linestyle='--')
    ax.set_xlabel('candidates evaluated')
    ax.set_ylabel('fitness = CE + sharpness gap - CKA (lower is better)')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def op_frequency(records: List[dict]) -> Dict[str, Dict[str, int]]:
    """``{gene: {option: count}}`` over the genomes of ``records``."""
    table: Dict[str, Dict[str, int]] = {g: {} for g in GENES}
    for rec in records:
        for gene, value in rec['genome'].items():
            table[gene][str(value)] = table[gene].get(str(value), 0) + 1
    return table


def plot_op_frequency(records: List[dict], path: str, title: str = 'operations of the top candidates') -> str:
    """PNG bar charts (one per gene) of how often each option appears among ``records`` (paper Fig. 5)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    table = op_frequency(records)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, gene in zip(axes.flat, GENES):
        items = sorted(table[gene].items(), key=lambda kv: -kv[1])
        ax.bar([k for k, _ in items], [v for _, v in items], color='tab:blue')
        ax.set_title(gene)
        ax.tick_params(axis='x', rotation=60, labelsize=8)
    fig.suptitle(f'{title} (n={len(records)})')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_best_config(genome: Genome, base_config: str, sources: dict, path: str, align_always: bool = False,
                      note: str = '', teacher: Optional[dict] = None) -> str:
    """Write a config that inherits ``base_config`` (by absolute path) and distils with ``genome``
    (``tools/train.py`` ready).

    Args:
        genome: the searched distiller.
        base_config: the final-distillation config the search used.
        sources: its ``kd_zero_sources``.
        path: output ``.py`` path.
        align_always: as in :func:`~mmkd_ext.kd_zero.proxy.aligner_cfg`.
        note: comment line (e.g. the fitness terms).
        teacher: ``model`` settings of the teacher the search used (``teacher_ckpt``, ``teacher``) when they
            differ from ``base_config``'s (``proxy.cfg_options``); written into the config so that the final
            distillation uses the same teacher.

    Returns:
        ``path``.
    """
    base = osp.abspath(base_config)  # absolute: the file keeps working when its folder is moved
    distiller = dict(_delete_=True, **distiller_cfg(genome, sources, align_always))
    distiller_text = pprint.pformat(distiller, sort_dicts=False, width=110)
    text = (f'# KD-Zero searched distiller: {genome}\n'
            + (f'# {note}\n' if note else '')
            + f'_base_ = [{base!r}]\n'
            + f'kd_zero_genome = {pprint.pformat(genome.to_dict(), sort_dicts=False)}\n'
            + ('# the teacher the search used (proxy.cfg_options.model)\n' if teacher else '')
            + f'model = dict({_model_kwargs(teacher)}distiller={distiller_text})\n')
    with open(path, 'w') as f:
        f.write(text)
    return path


def _model_kwargs(teacher: Optional[dict]) -> str:
    """``teacher_ckpt=..., `` etc. for the ``model = dict(...)`` line (empty without overrides)."""
    return ''.join(f'{k}={pprint.pformat(v, sort_dicts=False, width=110)}, ' for k, v in (teacher or {}).items())


def write_candidates(records: List[dict], path: str) -> str:
    """All evaluated candidates (genome, status, fitness terms, iterations) as JSON."""
    with open(path, 'w') as f:
        json.dump(records, f, indent=1)
    return path
