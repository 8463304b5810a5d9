"""The KD-Zero distiller genome (Eq. 1) and its search space.

A genome is one choice per gene: knowledge input, transform-1 -> transform-2 -> transform-3,
distance, weight value W_f, calibration and temperature. It round-trips through a plain dict
(``Genome.from_dict(g.to_dict()) == g``) so it can live in configs and JSON search state.
:func:`validate` checks a genome against a :class:`SearchSpace` before any training and raises
:class:`GenomeError` listing the valid choices.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

from . import operations as ops

GENES = ('knowledge', 't1', 't2', 't3', 'distance', 'weight', 'calibration', 'tau')
TRANSFORM_SLOTS = ('t1', 't2', 't3')


class GenomeError(ValueError):
    """A genome names an unknown operation or one incompatible with its knowledge input."""


@dataclass(frozen=True)
class Genome:
    """One distiller (Eq. 1): ``tau^2 * weight * W_Cal * D(T(f_S / tau), T(f_T / tau))``, T = t3 . t2 . t1."""
    knowledge: str = 'logits'
    t1: str = 'no'
    t2: str = 'no'
    t3: str = 'no'
    distance: str = 'kl'
    weight: float = 1.0
    calibration: str = 'no'
    tau: float = 4.0

    def to_dict(self) -> dict:
        """Plain dict of the genes (JSON and config friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'Genome':
        """Build from a dict; unknown keys raise :class:`GenomeError` naming the valid genes."""
        if isinstance(data, Genome):
            return data
        unknown = sorted(set(data) - set(GENES))
        if unknown:
            raise GenomeError(f'genome has unknown gene(s) {unknown}; valid genes are {list(GENES)}')
        values = dict(data)
        for key in ('weight', 'tau'):
            if key in values:
                values[key] = float(values[key])
        return cls(**values)

    @property
    def transforms(self) -> tuple:
        return self.t1, self.t2, self.t3

    def key(self) -> str:
        """A stable string id, e.g. for de-duplication."""
        return '|'.join(f'{getattr(self, g)}' for g in GENES)

    def __str__(self) -> str:
        return (f'{self.knowledge}: {self.t1}>{self.t2}>{self.t3}, {self.distance}, W={self.weight:g}, '
                f'cal={self.calibration}, tau={self.tau:g}')


@dataclass
class SearchSpace:
    """The options of every gene ([P] Table 1 names, [R] grids; METHODS.md 2.3).

    Args:
        knowledge: knowledge inputs to search over.
        slot_typing: True: t1/t2/t3 draw from the typed slots attention/scale/norm ([R], following [X]);
            False: every slot draws from the full union of transforms.
        distances, weights, calibrations, taus: the remaining genes' options.
    """
    knowledge: Sequence[str] = ('feature', 'embedding', 'logits')
    slot_typing: bool = True
    distances: Sequence[str] = tuple(ops.DISTANCES)
    weights: Sequence[float] = tuple(ops.WEIGHT_VALUES)
    calibrations: Sequence[str] = tuple(ops.CALIBRATIONS)
    taus: Sequence[float] = tuple(ops.TEMPERATURES)
    slots: Dict[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.slots:
            union = tuple(ops.TRANSFORMS)
            self.slots = dict(ops.SLOT_OPTIONS) if self.slot_typing else {s: union for s in TRANSFORM_SLOTS}
        _check_subset('knowledge', self.knowledge, ops.KNOWLEDGE_RANKS)
        _check_subset('distance', self.distances, ops.DISTANCES)
        _check_subset('calibration', self.calibrations, ops.CALIBRATIONS)
        for slot, names in self.slots.items():
            _check_subset(slot, names, ops.TRANSFORMS)

    @classmethod
    def from_cfg(cls, cfg: Optional[dict]) -> 'SearchSpace':
        """Build from a config dict (any subset of the constructor arguments)."""
        cfg = dict(cfg or {})
        if 'slots' in cfg:
            cfg['slots'] = {k: tuple(v) for k, v in cfg['slots'].items()}
        return cls(**cfg)

    def options(self, gene: str) -> List:
        """All options of ``gene`` (a name of :data:`GENES`)."""
        table = {'knowledge': self.knowledge, 'distance': self.distances, 'weight': self.weights,
                 'calibration': self.calibrations, 'tau': self.taus}
        table.update(self.slots)
        if gene not in table:
            raise GenomeError(f'unknown gene {gene!r}; valid genes are {list(GENES)}')
        return list(table[gene])


def _check_subset(gene: str, names: Sequence[str], valid: dict) -> None:
    bad = [n for n in names if n not in valid]
    if bad:
        raise GenomeError(f'{gene}: unknown option(s) {bad}; valid choices are {sorted(valid)}')


def valid_transforms(slot_options: Sequence[str], rank: int) -> List[str]:
    """The transforms of ``slot_options`` that accept a tensor of ``rank``."""
    return [n for n in slot_options if rank in ops.TRANSFORMS[n].accepts]


def validate(genome: Genome, space: Optional[SearchSpace] = None) -> Genome:
    """Check every gene is a known option and each transform accepts the rank it receives.

    Args:
        genome: the genome to check.
        space: options to check against; default: the full space (all ops, typed slots off).

    Returns:
        ``genome`` unchanged.

    Raises:
        GenomeError: naming the gene, the bad value and the valid choices.
    """
    space = space or SearchSpace(slot_typing=False)
    for gene in ('knowledge', 'distance', 'calibration'):
        value = getattr(genome, gene)
        if value not in space.options(gene):
            raise GenomeError(f'genome {gene}={value!r} is unknown; valid choices are {space.options(gene)}')
    for gene in ('weight', 'tau'):
        value = getattr(genome, gene)
        if not value > 0:
            raise GenomeError(f'genome {gene}={value!r} must be > 0 (search grid: {space.options(gene)})')
    rank = ops.KNOWLEDGE_RANKS[genome.knowledge]
    for slot in TRANSFORM_SLOTS:
        name = getattr(genome, slot)
        if name not in space.slots[slot]:
            raise GenomeError(f'genome {slot}={name!r} is not a transform of this slot; valid choices are '
                              f'{list(space.slots[slot])}')
        op = ops.TRANSFORMS[name]
        if rank not in op.accepts:
            raise GenomeError(
                f'genome {slot}={name!r} accepts rank-{sorted(op.accepts)} tensors but receives a rank-{rank} tensor '
                f'(knowledge={genome.knowledge!r}, after {_chain_before(genome, slot)}); valid choices here are '
                f'{valid_transforms(space.slots[slot], rank)}')
        rank = op.output_rank(rank)
    return genome


def _chain_before(genome: Genome, slot: str) -> str:
    idx = TRANSFORM_SLOTS.index(slot)
    return ' > '.join(['input'] + [getattr(genome, s) for s in TRANSFORM_SLOTS[:idx]])


def _choice(rng: random.Random, options: Sequence, probs: Optional[Dict[str, float]]):
    if not probs:
        return rng.choice(list(options))
    weights = [probs.get(str(o), 0.0) for o in options]
    if sum(weights) <= 0:
        return rng.choice(list(options))
    return rng.choices(list(options), weights=weights, k=1)[0]


def sample_gene(gene: str, space: SearchSpace, rng: random.Random, rank: Optional[int] = None,
                probs: Optional[Dict[str, Dict[str, float]]] = None):
    """Sample one gene; transform slots only draw ops that accept ``rank``.

    Args:
        gene: a name of :data:`GENES`.
        space: the search space.
        rng: random source.
        rank: input rank of the slot (transform genes only).
        probs: optional ``{gene: {str(option): probability}}`` (search-space shrinkage).
    """
    options = space.options(gene)
    if gene in TRANSFORM_SLOTS:
        options = valid_transforms(options, rank)
    return _choice(rng, options, (probs or {}).get(gene))


def sample_genome(space: SearchSpace, rng: random.Random,
                  probs: Optional[Dict[str, Dict[str, float]]] = None) -> Genome:
    """Sample a valid genome, gene by gene (transforms conditioned on the running tensor rank)."""
    values = {'knowledge': sample_gene('knowledge', space, rng, probs=probs)}
    rank = ops.KNOWLEDGE_RANKS[values['knowledge']]
    for slot in TRANSFORM_SLOTS:
        values[slot] = sample_gene(slot, space, rng, rank, probs)
        rank = ops.TRANSFORMS[values[slot]].output_rank(rank)
    for gene in ('distance', 'weight', 'calibration', 'tau'):
        values[gene] = sample_gene(gene, space, rng, probs=probs)
    return validate(Genome.from_dict(values), space)


def repair(genome: Genome, space: SearchSpace, rng: random.Random,
           probs: Optional[Dict[str, Dict[str, float]]] = None) -> Genome:
    """Resample the transforms that became incompatible (e.g. after crossover changed the knowledge)."""
    values = genome.to_dict()
    rank = ops.KNOWLEDGE_RANKS[genome.knowledge]
    for slot in TRANSFORM_SLOTS:
        if rank not in ops.TRANSFORMS[values[slot]].accepts:
            values[slot] = sample_gene(slot, space, rng, rank, probs)
        rank = ops.TRANSFORMS[values[slot]].output_rank(rank)
    return validate(Genome.from_dict(values), space)

