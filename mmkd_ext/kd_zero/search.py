"""KD-Zero evolutionary distiller search (paper Sec. 3.2, METHODS.md 2.5) and the Rand-KD baseline.

Steady-state evolution by default ([R] one evaluated child = one "iteration"): a random initial
population, truncation selection of the top ``parents``, uniform crossover, per-gene mutation,
loss rejection and search-space shrinkage. ``offspring_per_generation`` children are proposed per
generation (1 = steady state; ``population_size // 2`` = the generational variant); the state is saved
to ``search_state.json`` after every generation and each finished candidate is appended to
``evaluations_rank*.jsonl`` at once, so a killed search resumes without re-training anything.

Under ``torchrun`` the candidates of a generation form a work queue: each rank claims the next
untrained proposal from an atomic counter in the process group's key-value store (``store.add``), so a
rank whose candidate was rejected after a few iterations takes the next one instead of waiting, and the
results are all-gathered at the end of the generation. Every rank keeps the same RNG, so they agree on
the proposals without communicating them, and the search (proposals, population, state) is the same
for any number of ranks.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import logging
import os
import os.path as osp
import random
import time
import traceback
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch.distributed as torch_dist
from mmengine.logging import print_log

from . import genome as gn
from .fitness import population_fitness, raw_fitness
from .genome import GENES, Genome, SearchSpace
from .proxy import EvalResult

Evaluator = Callable[[Genome], EvalResult]
STATE_FILE = 'search_state.json'
# [R] default bound on trained candidates, as a multiple of the budget (population + iterations)
MAX_CANDIDATES_FACTOR = 5
# settings a resumed search may change: the budget and its bounds
RESUMABLE_SETTINGS = ('iterations', 'max_consecutive_rejections', 'max_consecutive_failures', 'max_candidates')


class SearchStalled(RuntimeError):
    """The search hit one of its bounds (consecutive rejections / failures, total candidates)."""


@dataclass
class EvolutionConfig:
    """Search settings ([P] population 20 / 100 iterations; [R] the rest, METHODS.md 2.5).

    Args:
        population_size: individuals kept ([P] 20).
        iterations: children evaluated after the initial population ([P] 100).
        parents: truncation selection size (top 50%).
        p_swap: per-gene probability of taking parent b's gene in uniform crossover.
        p_mutation: per-gene resampling probability (at least one gene is mutated).
        offspring_per_generation: children per generation (1: steady state; pop // 2: generational).
        mode: 'evolution' (KD-Zero) or 'random' (Rand-KD: uniform samples, same budget).
        shrink_interval: iterations between search-space shrinkages.
        shrink_eta: ``prob <- prob * (1 - eta)^count``.
        tail_fraction: bottom share of the population counted by the shrinkage.
        fitness_normalize: z-score the fitness terms across the pool ([R] K4).
        seed: RNG seed of the search.
        max_resample: attempts to draw a child that was not evaluated yet.
        max_consecutive_rejections: stop the search when this many candidates in a row were rejected or
            failed ([R] a bound, so a proxy that rejects everything cannot refill the population forever).
        max_consecutive_failures: stop when this many candidates in a row raised an exception (a bug or a
            config error fails every candidate, unlike a bad distiller).
        max_candidates: stop after training this many candidates in all (None: 5 x (population_size +
            iterations)).
    """
    population_size: int = 20
    iterations: int = 100
    parents: int = 10
    p_swap: float = 0.5
    p_mutation: float = 0.2
    offspring_per_generation: int = 1
    mode: str = 'evolution'
    shrink_interval: int = 10
    shrink_eta: float = 0.1
    tail_fraction: float = 0.25
    fitness_normalize: bool = True
    seed: int = 0
    max_resample: int = 100
    max_consecutive_rejections: int = 20
    max_consecutive_failures: int = 5
    max_candidates: Optional[int] = None

    def __post_init__(self) -> None:
        if self.mode not in ('evolution', 'random'):
            raise ValueError(f"search mode must be 'evolution' or 'random' (Rand-KD), got {self.mode!r}")
        if not 2 <= self.parents <= self.population_size:
            raise ValueError(f'parents={self.parents} must be in [2, population_size={self.population_size}]')


# ------------------------------------------------------------------------------------------------
# Pure evolutionary operators
# ------------------------------------------------------------------------------------------------
def uniform_crossover(a: Genome, b: Genome, rng: random.Random, p_swap: float = 0.5) -> Genome:
    """Per-gene uniform crossover: each gene comes from ``b`` with probability ``p_swap``."""
    da, db = a.to_dict(), b.to_dict()
    return Genome.from_dict({g: db[g] if rng.random() < p_swap else da[g] for g in GENES})


def mutate(genome: Genome, space: SearchSpace, rng: random.Random, p_mutation: float,
           probs: Optional[Dict[str, Dict[str, float]]] = None) -> Genome:
    """Resample each gene with probability ``p_mutation`` (at least one) from the (shrunk) probabilities,
    then repair transforms made incompatible with the knowledge input."""
    values = genome.to_dict()
    chosen = [g for g in GENES if rng.random() < p_mutation] or [rng.choice(GENES)]
    for gene in chosen:
        values[gene] = gn._choice(rng, space.options(gene), (probs or {}).get(gene))
    return gn.repair(Genome.from_dict(values), space, rng, probs)


def uniform_probs(space: SearchSpace) -> Dict[str, Dict[str, float]]:
    """Uniform sampling probabilities of every gene option."""
    return {g: {str(o): 1.0 / len(space.options(g)) for o in space.options(g)} for g in GENES}


def shrink(probs: Dict[str, Dict[str, float]], counts: Dict[str, Dict[str, int]], eta: float = 0.1
           ) -> Dict[str, Dict[str, float]]:
    """Search-space shrinkage: ``p(o) <- p(o) (1 - eta)^count(o)``, floored at 0.01 / n, renormalised.

    Args:
        probs: ``{gene: {option: p}}``.
        counts: ``{gene: {option: appearances among rejected + tail candidates}}``.
        eta: shrink rate ([R] 0.1).

    Returns:
        New probabilities (the input is not modified).
    """
    out = {}
    for gene, table in probs.items():
        floor = 0.01 / len(table)
        new = {o: max(p * (1 - eta) ** counts.get(gene, {}).get(o, 0), floor) for o, p in table.items()}
        total = sum(new.values())
        out[gene] = {o: p / total for o, p in new.items()}
    return out


def count_genes(genomes: Sequence[Genome]) -> Dict[str, Dict[str, int]]:
    """``{gene: {str(option): occurrences}}`` over ``genomes``."""
    counts: Dict[str, Dict[str, int]] = {g: {} for g in GENES}
    for genome in genomes:
        for gene, value in genome.to_dict().items():
            counts[gene][str(value)] = counts[gene].get(str(value), 0) + 1
    return counts


# ------------------------------------------------------------------------------------------------
# Distribution helpers
# ------------------------------------------------------------------------------------------------
def dist_info() -> tuple:
    """(rank, world_size) of the default process group, (0, 1) without one."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank(), torch_dist.get_world_size()
    return 0, 1


class WorkQueue:
    """Hand out the indices ``0 .. n - 1`` of one generation's untrained candidates to the ranks.

    Under a process group the next index comes from ``store.add(key, 1)``, an atomic counter in the
    group's key-value store (TCPStore under ``torchrun``), so ranks claim candidates as they become
    free; each index goes to exactly one rank. Without a process group (or a store) rank ``r`` takes
    ``r, r + W, ...`` (static round robin).

    Args:
        key: a name unique to this generation in this run (e.g. ``'kd_zero/gen12'``).
        n: number of items.
    """

    def __init__(self, key: str, n: int) -> None:
        self.key, self.n = key, n
        self.rank, self.world = dist_info()
        self.store = _default_store() if self.world > 1 else None
        self._static = iter(range(self.rank, n, self.world))

    def __iter__(self):
        return self

    def __next__(self) -> int:
        index = self.store.add(self.key, 1) - 1 if self.store is not None else next(self._static, self.n)
        if index >= self.n:
            raise StopIteration
        return index


def _default_store():
    """The default process group's key-value store, or None where this torch build does not expose it."""
    getter = getattr(torch_dist.distributed_c10d, '_get_default_store', None)
    try:
        return getter() if getter is not None else None
    except (RuntimeError, ValueError):
        return None


@contextlib.contextmanager
def rank_local():
    """Let a proxy ``Runner`` on one rank train alone although a process group exists.

    MMEngine asks ``torch.distributed.is_initialized()`` to decide on samplers, rank and DDP; the
    candidates of one rank are independent single-process runs, so it is told False meanwhile.
    """
    original = torch_dist.is_initialized
    torch_dist.is_initialized = lambda: False
    try:
        yield
    finally:
        torch_dist.is_initialized = original


# ------------------------------------------------------------------------------------------------
# The search
# ------------------------------------------------------------------------------------------------
class DistillerSearch:
    """Evolutionary (or random) search over KD-Zero genomes with resumable state.

    Args:
        space: the search space.
        cfg: the search settings.
        evaluator: genome -> :class:`EvalResult` (a :class:`~mmkd_ext.kd_zero.proxy.ProxyEvaluator` or,
            in tests, any cheap callable).
        work_dir: where the state, logs and plots go.
        progress: print one progress line per generation (rank 0).
        fingerprint: everything else that determines the results (:func:`search_fingerprint`: the base config
            the proxies train, the proxy settings, the search space, the hashes of the weight files); a resume
            with a different one is refused, naming the keys.
    """

    def __init__(self, space: SearchSpace, cfg: EvolutionConfig, evaluator: Evaluator, work_dir: str,
                 progress: bool = True, fingerprint: Optional[Dict[str, Any]] = None) -> None:
        self.space, self.cfg, self.evaluator, self.work_dir = space, cfg, evaluator, work_dir
        self.fingerprint = _plain(fingerprint or {})
        self.rank, self.world = dist_info()
        self.progress = progress and self.rank == 0
        os.makedirs(work_dir, exist_ok=True)
        self.rng = random.Random(cfg.seed)
        self.state = dict(generation=0, iterations_done=0, records=[], population=[], probs=uniform_probs(space),
                          counts={g: {} for g in GENES}, since_shrink=0, history=[], rng=None, config=asdict(cfg),
                          fingerprint=self.fingerprint)
        self._cache: Dict[str, dict] = {}
        self.claimed = 0  # candidates this rank trained in this call
        self.waited = 0.0  # seconds this rank spent waiting for the others (gathers, barriers) in this call
        self._run_id = time.time_ns()  # queue keys must not repeat within one process group
        if self.world > 1:
            ids = [None] * self.world
            torch_dist.all_gather_object(ids, self._run_id)
            self._run_id = ids[0]

    # -- persistence -------------------------------------------------------------------------------
    @property
    def state_path(self) -> str:
        return osp.join(self.work_dir, STATE_FILE)

    def save(self) -> None:
        """Write the state (rank 0) atomically and drop the per-candidate logs it now contains."""
        self.state['rng'] = _rng_to_json(self.rng.getstate())
        if self.rank == 0:
            tmp = self.state_path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(self.state, f)
            os.replace(tmp, self.state_path)
        self._barrier()
        if self.rank == 0:
            for path in glob.glob(osp.join(self.work_dir, 'evaluations_rank*.jsonl')):
                os.remove(path)
        self._barrier()

    def load(self) -> bool:
        """Resume from ``search_state.json`` and the per-candidate logs; False when there is none."""
        if not osp.exists(self.state_path):
            return False
        with open(self.state_path) as f:
            state = json.load(f)
        current = asdict(self.cfg)
        changed = sorted(k for k in current if k not in RESUMABLE_SETTINGS and state['config'].get(k) != current[k])
        if changed:
            raise ValueError(f'{self.state_path} was written with different search settings {changed} '
                             f'(saved {[state["config"].get(k) for k in changed]}, '
                             f'now {[current[k] for k in changed]}); '
                             f'resume with the same settings (only {RESUMABLE_SETTINGS} may change) or use a new '
                             'work dir '
                             '/ --no-resume')
        self._check_fingerprint(state.get('fingerprint'))
        self.state = state
        self.state['config'] = current
        self.state['fingerprint'] = self.fingerprint
        self.rng.setstate(_rng_from_json(self.state['rng']))
        self._cache = {Genome.from_dict(r['genome']).key(): r['result'] for r in self.state['records']}
        for path in sorted(glob.glob(osp.join(self.work_dir, 'evaluations_rank*.jsonl'))):
            for item in read_evaluation_log(path):
                self._cache[item['key']] = item['result']
        return True

    def _check_fingerprint(self, saved: Optional[Dict[str, Any]]) -> None:
        """Refuse to resume a population scored under other settings (teacher, proxy, data, base config)."""
        if saved is None:  # a state written before fingerprints were saved: nothing to compare
            warnings.warn(f'{self.state_path} records no settings fingerprint (an older search); resuming without '
                          'checking the teacher, proxy and data settings')
            return
        def text(d: dict, key: str) -> str:  # compared as JSON text: NaN equals NaN, 1 is not True
            return json.dumps(d.get(key), sort_keys=True)

        changed = sorted(k for k in set(saved) | set(self.fingerprint) if text(saved, k) != text(self.fingerprint, k))
        if changed:
            shown = '; '.join(f'{k}: saved {saved.get(k)!r}, now {self.fingerprint.get(k)!r}' for k in changed[:8])
            more = f' (and {len(changed) - 8} more)' if len(changed) > 8 else ''
            raise ValueError(f'{self.state_path} was scored under other settings: {changed[:8]}{more} changed '
                             f'({shown}). A resumed search ranks new candidates against the saved population, so '
                             'every setting that decides a score must match: undo the change, or use a new work dir '
                             '/ --no-resume')

    def _barrier(self) -> None:
        if self.world > 1:
            start = time.perf_counter()
            torch_dist.barrier()
            self.waited += time.perf_counter() - start

    # -- proposals ---------------------------------------------------------------------------------
    @property
    def population(self) -> List[dict]:
        return [self.state['records'][i] for i in self.state['population']]

    def _evaluated_keys(self) -> set:
        return {Genome.from_dict(r['genome']).key() for r in self.state['records']}

    def _propose(self, n: int, initial: bool) -> List[Genome]:
        seen, out = self._evaluated_keys(), []
        for _ in range(n):
            for _attempt in range(self.cfg.max_resample):
                child = self._one(initial)
                if child.key() not in seen:
                    break
            seen.add(child.key())
            out.append(child)
        return out

    def _one(self, initial: bool) -> Genome:
        if self.cfg.mode == 'random':
            return gn.sample_genome(self.space, self.rng)
        if initial:
            return gn.sample_genome(self.space, self.rng, self.state['probs'])
        ranked = self._ranked(self.population)
        parents = ranked[:self.cfg.parents]
        pa, pb = self.rng.sample(parents, 2)
        child = uniform_crossover(Genome.from_dict(pa['genome']), Genome.from_dict(pb['genome']), self.rng,
                                  self.cfg.p_swap)
        return mutate(gn.repair(child, self.space, self.rng, self.state['probs']), self.space, self.rng,
                      self.cfg.p_mutation, self.state['probs'])

    def _ranked(self, records: List[dict]) -> List[dict]:
        scores = population_fitness([r['result']['terms'] for r in records], self.cfg.fitness_normalize)
        order = sorted(range(len(records)), key=lambda i: (scores[i], i))
        return [records[i] for i in order]

    # -- evaluation --------------------------------------------------------------------------------
    def _evaluate(self, genomes: List[Genome]) -> List[EvalResult]:
        """Train the candidates not evaluated yet (claimed from a :class:`WorkQueue` across ranks), log each
        at once to ``evaluations_rank{r}.jsonl`` and all-gather the results."""
        todo = [i for i, genome in enumerate(genomes) if genome.key() not in self._cache]
        queue = WorkQueue(f'kd_zero/{self._run_id}/gen{self.state["generation"]}', len(todo))
        mine = {}
        for slot in queue:
            i = todo[slot]
            key = genomes[i].key()
            result = self._evaluate_one(genomes[i]).to_dict()
            self._cache[key] = mine[i] = result
            with open(osp.join(self.work_dir, f'evaluations_rank{self.rank}.jsonl'), 'a') as f:
                f.write(json.dumps(dict(key=key, result=result)) + '\n')
        self.claimed += len(mine)
        gathered = [mine]
        if self.world > 1:
            gathered = [None] * self.world
            start = time.perf_counter()
            torch_dist.all_gather_object(gathered, mine)
            self.waited += time.perf_counter() - start
        merged = {int(i): r for part in gathered for i, r in part.items()}
        for i, genome in enumerate(genomes):
            self._cache[genome.key()] = merged.get(i, self._cache.get(genome.key()))
        return [EvalResult.from_dict(self._cache[genome.key()]) for genome in genomes]

    def _evaluate_one(self, genome: Genome) -> EvalResult:
        """Run the evaluator; an exception fails this candidate only (recorded with its type and message)."""
        start = time.perf_counter()
        try:
            with rank_local():
                return self.evaluator(genome)
        except Exception as err:  # noqa: BLE001  [R] one broken candidate must not end the search
            print_log(f'KD-Zero candidate {genome.to_dict()} failed:\n{traceback.format_exc()}', logger='current',
                      level=logging.WARNING)
            return EvalResult('failed', reason=f'{type(err).__name__}: {str(err)[:300]}',
                              seconds=time.perf_counter() - start)

    def _report_progress(self) -> None:
        """One line per generation: what was really trained, accepted, rejected and failed so far."""
        if not self.progress:
            return
        records, cfg = self.state['records'], self.cfg
        status = Counter(r['result']['status'] for r in records)
        print(f"[kd_zero] generation {self.state['generation']}: population {len(self.state['population'])}/"
              f"{cfg.population_size}, children {self.state['iterations_done']}/{cfg.iterations}; trained "
              f"{len(records)} candidates ({status['rejected']} rejected, {status['failed']} failed)", flush=True)

    def _check_bounds(self) -> None:
        """Raise :class:`SearchStalled` when a bound of :class:`EvolutionConfig` is hit."""
        records, cfg = self.state['records'], self.cfg
        trailing = list(itertools.takewhile(lambda r: r['result']['status'] != 'ok', reversed(records)))
        failed = list(itertools.takewhile(lambda r: r['result']['status'] == 'failed', trailing))
        limit = cfg.max_candidates or MAX_CANDIDATES_FACTOR * (cfg.population_size + cfg.iterations)
        if len(failed) >= cfg.max_consecutive_failures:
            raise SearchStalled(
                f'the last {len(failed)} KD-Zero candidates all failed with an exception '
                f'({_reasons(failed)}): that is a bug or a config error, not a bad distiller. Fix it (the '
                f'tracebacks are in the log above); the search resumes from {self.state_path}.')
        if len(trailing) >= cfg.max_consecutive_rejections or (len(records) >= limit and not self.finished):
            bound = (f'{len(trailing)} candidates in a row were rejected' if len(trailing) >=
                     cfg.max_consecutive_rejections else f'{len(records)} candidates were trained (max_candidates)')
            raise SearchStalled(
                f'KD-Zero search stopped: {bound} with population {len(self.state["population"])}/'
                f'{cfg.population_size} and {self.state["iterations_done"]}/{cfg.iterations} children. Rejection '
                f'reasons: {_reasons(trailing or records)}. Give each candidate a longer proxy run (proxy.fraction), '
                'loosen the rejection rules (proxy.rejection, proxy.min_accuracy) or shrink the search space; '
                'search.max_consecutive_rejections / search.max_candidates raise the bounds.')

    # -- one generation ----------------------------------------------------------------------------
    def step(self) -> None:
        """Propose, evaluate and select one generation, then save the state."""
        st, cfg = self.state, self.cfg
        missing = cfg.population_size - len(st['population'])
        initial = missing > 0
        # [R] refills of the initial population (after rejections) propose at least a generation's worth of
        # candidates, so every rank has work; surplus accepted ones compete for the population (elitist)
        n = max(missing, cfg.offspring_per_generation) if initial else min(
            cfg.offspring_per_generation, cfg.iterations - st['iterations_done'])
        genomes = self._propose(n, initial)
        results = self._evaluate(genomes)
        new_ok, rejected = [], []
        for genome, result in zip(genomes, results):
            st['records'].append(dict(genome=genome.to_dict(), result=result.to_dict(), generation=st['generation']))
            (new_ok if result.status == 'ok' else rejected).append(len(st['records']) - 1)
        self._add_counts([Genome.from_dict(st['records'][i]['genome']) for i in rejected])
        pool = [st['records'][i] for i in st['population'] + new_ok]
        index = {id(r): i for i, r in zip(st['population'] + new_ok, pool)}
        st['population'] = [index[id(r)] for r in self._ranked(pool)[:cfg.population_size]]
        if not initial:
            st['iterations_done'] += n
            st['since_shrink'] += n
        if cfg.mode == 'evolution' and st['since_shrink'] >= cfg.shrink_interval:
            self._shrink()
        elif cfg.mode == 'evolution' and initial and rejected:
            self._shrink(tail=False)  # [R] rejections already shrink the space while the population fills
        st['history'].append(self._summary())
        st['generation'] += 1
        self.save()
        self._report_progress()
        self._check_bounds()

    def _add_counts(self, genomes: List[Genome]) -> None:
        for gene, table in count_genes(genomes).items():
            for option, c in table.items():
                self.state['counts'][gene][option] = self.state['counts'][gene].get(option, 0) + c

    def _shrink(self, tail: bool = True) -> None:
        """Shrink by the rejected candidates counted so far plus (``tail``) the bottom of the population."""
        if tail:
            ranked = self._ranked(self.population)
            bottom = ranked[len(ranked) - max(1, int(round(self.cfg.tail_fraction * len(ranked)))):]
            self._add_counts([Genome.from_dict(r['genome']) for r in bottom])
        self.state['probs'] = shrink(self.state['probs'], self.state['counts'], self.cfg.shrink_eta)
        self.state['counts'] = {g: {} for g in GENES}
        self.state['since_shrink'] = 0

    def _summary(self) -> dict:
        pop = self.population
        raws = [raw_fitness(r['result']['terms']) for r in pop]
        best = self._ranked(pop)[0] if pop else None
        return dict(generation=self.state['generation'], evaluated=len(self.state['records']),
                    best=raw_fitness(best['result']['terms']) if best else None,
                    mean=sum(raws) / len(raws) if raws else None, min=min(raws) if raws else None,
                    best_accuracy=best['result']['terms'].get('accuracy') if best else None)

    # -- driver ------------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return (len(self.state['population']) >= self.cfg.population_size
                and self.state['iterations_done'] >= self.cfg.iterations)

    def run(self, resume: bool = True, max_generations: Optional[int] = None) -> dict:
        """Run (or resume) until the budget is spent; returns the best record.

        Args:
            resume: continue from ``search_state.json`` if it exists.
            max_generations: stop after this many generations in this call (tests, time slicing).
        """
        if resume:
            self.load()
        steps = 0
        while not self.finished and (max_generations is None or steps < max_generations):
            self.step()
            steps += 1
        return self.best()

    def best(self) -> Optional[dict]:
        """The best individual of the current population (lowest fitness)."""
        pop = self.population
        return self._ranked(pop)[0] if pop else None

    def rejection_savings(self) -> dict:
        """Proxy iterations not spent because rejected candidates stopped early."""
        records = self.state['records']
        planned = sum(r['result']['planned_iters'] for r in records)
        spent = sum(r['result']['iters'] for r in records)
        rejected = [r for r in records if r['result']['status'] == 'rejected']
        return dict(candidates=len(records), rejected=len(rejected), planned_iters=planned, spent_iters=spent,
                    saved_fraction=(planned - spent) / planned if planned else 0.0)


def _reasons(records: List[dict], n: int = 3) -> str:
    """The ``n`` most common rejection / failure reasons of ``records`` with their counts."""
    counts = Counter(r['result'].get('reason') or r['result']['status'] for r in records
                     if r['result']['status'] != 'ok')
    return '; '.join(f'{count}x {reason}' for reason, count in counts.most_common(n))


def read_evaluation_log(path: str) -> List[dict]:
    """The finished candidates of one ``evaluations_rank*.jsonl``.

    A kill can leave the last line half written: it is dropped (the file truncated after the last complete
    line) with a warning, and that candidate is trained again. A corrupt line before the last is an error.

    Args:
        path: the log file.

    Returns:
        ``[{'key': ..., 'result': ...}, ...]`` in file order.

    Raises:
        CorruptEvaluationLog: a line other than the last is not valid JSON (names the file and line).
    """
    with open(path, 'rb') as f:
        lines = f.read().split(b'\n')
    items, offset = [], 0
    for number, line in enumerate(lines, 1):
        last = all(not rest.strip() for rest in lines[number:])
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as err:
                if not last:
                    raise CorruptEvaluationLog(
                        f'{path} line {number} is not valid JSON ({err.msg}); only the last line can be torn by a '
                        'kill. Delete that line (the candidate is trained again) or the file', err.doc, err.pos
                    ) from err
                warnings.warn(f'{path}: line {number} is incomplete (the search was killed while writing it); '
                              'dropping it, that candidate is trained again')
                with open(path, 'r+b') as f:
                    f.truncate(offset)
                break
        offset += len(line) + 1
    return items


class CorruptEvaluationLog(json.JSONDecodeError):
    """A line of ``evaluations_rank*.jsonl`` other than the last is not valid JSON."""


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return version, tuple(internal), gauss


def top_records(records: List[dict], k: int, normalize: bool = True) -> List[dict]:
    """The ``k`` best accepted records among all evaluated (for the Fig. 5-style frequency chart)."""
    ok = [r for r in records if r['result']['status'] == 'ok']
    scores = population_fitness([r['result']['terms'] for r in ok], normalize)
    return [ok[i] for i in sorted(range(len(ok)), key=lambda i: scores[i])[:k]]



def _plain(node: Any) -> Any:
    """``node`` as it reads back from JSON (tuples -> lists, other objects -> their ``str``)."""
    return json.loads(json.dumps(node, default=str))


def _flatten(node: Any, prefix: str, out: Dict[str, Any]) -> Dict[str, Any]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _flatten(value, f'{prefix}.{key}' if prefix else str(key), out)
    else:
        out[prefix] = node
    return out


def file_sha256(path: str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def search_fingerprint(cfg, base) -> Dict[str, Any]:
    """Everything besides ``search.*`` that determines a search's scores, as flat dotted keys.

    Args:
        cfg: the search config (its ``base_config``, ``search_space``, ``proxy`` and ``top_k``).
        base: the config the proxies train (``proxy.cfg_options`` merged, as ``ProxyEvaluator.base``).

    Returns:
        ``{'proxy.fraction': ..., 'search_space....': ..., 'base.model.teacher_ckpt': ..., ...,
        'weights.model.teacher_ckpt.sha256': <hash of that file>}``; a weight file that is not on this machine
        hashes to ``None``.
    """
    from ..weight_sources import find_weight_refs
    settings = dict(base_config=osp.abspath(cfg.base_config), search_space=cfg.get('search_space'),
                    proxy=cfg.get('proxy'), base=base.to_dict())
    out = _flatten(_plain(settings), '', {})
    for ref in find_weight_refs(base):
        path = ref.local_path()
        out[f'weights.{ref.where}.sha256'] = file_sha256(path) if osp.isfile(path) else None
    return out


def searched_teacher(cfg_options: Optional[dict]) -> Dict[str, Any]:
    """The teacher settings of ``proxy.cfg_options`` (``model.teacher_ckpt`` / ``model.teacher``), which the
    final distillation must keep: the candidates were scored with that teacher."""
    options = dict(cfg_options or {})
    model = {**dict(options.get('model') or {}),
             **{k[len('model.'):]: v for k, v in options.items() if k.startswith('model.')}}  # dotted keys too
    return _plain({k: model[k] for k in ('teacher', 'teacher_ckpt') if k in model})


def search_from_config(cfg, work_dir: str, mode: Optional[str] = None, resume: bool = True,
                       max_generations: Optional[int] = None, progress: bool = True) -> dict:
    """Run the search described by a search config and write its outputs (rank 0).

    Args:
        cfg: an mmengine ``Config`` with ``base_config``, ``search``, ``search_space``, ``proxy`` (see
            configs/kd_zero/README.md).
        work_dir: output folder: search_state.json, candidates.json, fitness.png, op_frequency.png,
            best_genome.json, best_distiller_config.py.
        mode: override ``search.mode`` ('evolution' or 'random' for Rand-KD).
        resume: continue a search found in ``work_dir``.
        max_generations: stop after this many generations in this call.
        progress: print one progress line per generation (rank 0).

    Returns:
        dict with the best record, the rejection savings and the output paths.
    """
    from mmengine.config import Config

    from . import report
    from .proxy import ProxyEvaluator
    search_cfg = dict(cfg.get('search', {}))
    if mode is not None:
        search_cfg['mode'] = mode
    evo = EvolutionConfig(**search_cfg)
    space = SearchSpace.from_cfg(cfg.get('search_space'))
    proxy = dict(cfg.get('proxy', {}))
    evaluator = ProxyEvaluator(cfg.base_config, work_dir, **proxy)
    search = DistillerSearch(space, evo, evaluator, work_dir, progress, search_fingerprint(cfg, evaluator.base))
    best = search.run(resume=resume, max_generations=max_generations)
    out = dict(best=best, savings=search.rejection_savings(), finished=search.finished, claimed=search.claimed,
               waited=search.waited,
               paths={})
    if search.rank != 0 or best is None:
        return out
    records = search.state['records']
    top = top_records(records, cfg.get('top_k', 5), evo.fitness_normalize)
    base = Config.fromfile(cfg.base_config)
    genome = Genome.from_dict(best['genome'])
    note = ', '.join(f'{k}={v:.4g}' for k, v in best['result']['terms'].items())
    paths = dict(
        state=search.state_path,
        candidates=report.write_candidates(records, osp.join(work_dir, 'candidates.json')),
        fitness_plot=report.plot_fitness(search.state['history'], osp.join(work_dir, 'fitness.png'),
                                         f'KD-Zero search ({evo.mode})'),
        op_frequency_plot=report.plot_op_frequency(top, osp.join(work_dir, 'op_frequency.png')),
        config=report.write_best_config(genome, cfg.base_config, base.kd_zero_sources,
                                        osp.join(work_dir, 'best_distiller_config.py'),
                                        base.get('kd_zero_align_always', False), note,
                                        teacher=searched_teacher(proxy.get('cfg_options'))))
    with open(osp.join(work_dir, 'best_genome.json'), 'w') as f:
        json.dump(dict(genome=best['genome'], result=best['result'], savings=out['savings']), f, indent=1)
    out['paths'] = paths
    return out
