"""KD-Zero search robustness: failing candidates, bounded refills, honest progress, torn evaluation logs."""
import json
import os.path as osp

import pytest

from mmkd_ext.kd_zero.genome import SearchSpace
from mmkd_ext.kd_zero.proxy import EvalResult
from mmkd_ext.kd_zero.search import CorruptEvaluationLog, DistillerSearch, EvolutionConfig, SearchStalled

from .test_search import CFG, Counting, cheap_fitness

SMALL = dict(population_size=2, iterations=1, parents=2, seed=0)  # the budget of the user report


class Failing:
    """Raises KeyError on the calls listed in ``on`` (all calls when None), else the cheap fitness."""

    def __init__(self, on=None):
        self.on, self.calls = on, 0

    def __call__(self, genome):
        self.calls += 1
        if self.on is None or self.calls in self.on:
            raise KeyError('recorder source')
        return cheap_fitness(genome)


def always_rejected(genome):
    return EvalResult('rejected', reason='proxy accuracy 9.0% < 20%', iters=1, planned_iters=10)


def search(tmp_path, evaluator, progress=False, **cfg):
    return DistillerSearch(SearchSpace(), EvolutionConfig(**cfg), evaluator, str(tmp_path), progress=progress)


def test_a_candidate_raising_keyerror_is_recorded_as_failed_and_the_search_goes_on(tmp_path):
    s = search(tmp_path, Failing(on={2, 5}), **CFG)
    best = s.run()
    failed = [r for r in s.state['records'] if r['result']['status'] == 'failed']
    assert len(failed) == 2 and all(r['result']['reason'] == "KeyError: 'recorder source'" for r in failed)
    assert s.finished and best['result']['status'] == 'ok'


def test_a_bug_failing_every_candidate_stops_the_search_with_its_exception(tmp_path):
    evaluator = Failing()
    with pytest.raises(SearchStalled, match=r"last 4 KD-Zero candidates all failed .*4x KeyError: 'recorder source'"):
        search(tmp_path, evaluator, max_consecutive_failures=3, **SMALL).run(max_generations=50)
    assert evaluator.calls == 4  # generations of 2: stopped at the first check with >= 3 failures in a row


def test_a_proxy_rejecting_everything_stops_after_the_bound_naming_reasons_and_what_to_change(tmp_path):
    s = search(tmp_path, always_rejected, max_consecutive_rejections=6, **SMALL)
    with pytest.raises(SearchStalled) as err:
        s.run(max_generations=50)
    msg = str(err.value)
    assert '6 candidates in a row were rejected' in msg and '6x proxy accuracy 9.0% < 20%' in msg
    assert 'proxy.fraction' in msg and 'population 0/2' in msg
    assert len(s.state['records']) == 6


def test_total_candidates_are_bounded(tmp_path):
    def half_rejected(genome, calls=[0]):  # noqa: B006  (counts calls)
        calls[0] += 1
        return always_rejected(genome) if calls[0] % 2 else cheap_fitness(genome)
    s = search(tmp_path, half_rejected, max_candidates=7, **dict(CFG, population_size=6, iterations=20))
    with pytest.raises(SearchStalled, match=r'\d+ candidates were trained \(max_candidates\)'):
        s.run(max_generations=50)
    assert 7 <= len(s.state['records']) < 7 + 6  # stops at the first generation that reaches the bound


def test_progress_lines_count_trained_rejected_and_failed_candidates(tmp_path, capsys):
    def reject_first_two(genome, calls=[0]):  # noqa: B006
        calls[0] += 1
        terms = dict(ce=float(len(genome.key()) % 7), sharpness_gap=genome.weight / 100, cka=1 / genome.tau,
                     accuracy=50.0)
        return always_rejected(genome) if calls[0] <= 2 else EvalResult('ok', terms, iters=10, planned_iters=10)
    search(tmp_path, reject_first_two, progress=True, **SMALL).run()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith('[kd_zero]')]
    assert lines[0] == ('[kd_zero] generation 1: population 0/2, children 0/1; '
                        'trained 2 candidates (2 rejected, 0 failed)')
    assert lines[-1].endswith('population 2/2, children 1/1; trained 5 candidates (2 rejected, 0 failed)')


def killed_search(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, Counting(fail_after=9), **CFG).run()
    log = osp.join(str(tmp_path), 'evaluations_rank0.jsonl')
    with open(log) as f:
        lines = f.read().splitlines()
    assert lines
    return log, lines


def test_a_torn_last_log_line_is_dropped_with_a_warning_and_the_resume_matches(tmp_path):
    full = search(tmp_path / 'full', Counting(), **CFG)
    full.run()
    log, lines = killed_search(tmp_path / 'killed')
    with open(log, 'a') as f:
        f.write(lines[-1][:25])  # killed while writing the next candidate
    resumed_eval = Counting()
    resumed = search(tmp_path / 'killed', resumed_eval, **CFG)
    with pytest.warns(UserWarning, match=f'line {len(lines) + 1} is incomplete'):
        resumed.run()
    assert [r['genome'] for r in resumed.state['records']] == [r['genome'] for r in full.state['records']]
    assert resumed.state['population'] == full.state['population']


def test_a_corrupt_line_in_the_middle_names_file_and_line(tmp_path):
    log, lines = killed_search(tmp_path)
    lines = [lines[0][:20]] + lines
    with open(log, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(CorruptEvaluationLog, match=r'evaluations_rank0.jsonl line 1 is not valid JSON') as err:
        search(tmp_path, Counting(), **CFG).run()
    assert isinstance(err.value, json.JSONDecodeError)  # the upstream type of the old error
