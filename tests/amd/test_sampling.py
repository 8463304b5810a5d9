"""Candidate sampling per joint step and BN recalibration before validation (issue 26)."""
import pytest
import torch
from mmengine.optim import OptimWrapper

from mmkd_ext.amd.bn_stats import batch_norms
from mmkd_ext.amd.loops import AMDCandidatesValLoop
from mmkd_ext.amd.sampling import candidate_subset, check_candidates_per_step

from . import bn_ranks
from .bn_ranks import StatsRecorder, _Runner, batch, spawn_on_gloo_ranks
from .test_algorithm import _algorithm, _batch, teacher_ckpt  # noqa: F401 (fixture)

SCALES = [0.9, 0.7, 0.5, 0.3, 0.2]


def test_subset_modes_by_hand():
    assert candidate_subset(SCALES, 3, 'all') == SCALES
    for it in range(20):
        sandwich = candidate_subset(SCALES, it, 'sandwich', num_random=1, seed=4)
        assert len(sandwich) == 3 and sandwich[0] == 0.9 and sandwich[-1] == 0.2 and sandwich[1] in (0.7, 0.5, 0.3)
        single = candidate_subset(SCALES, it, 'single', seed=4)
        assert len(single) == 1 and single[0] in SCALES
        assert candidate_subset(SCALES, it, 'single', seed=4) == single  # pure function of (seed, iteration)
    middles = {candidate_subset(SCALES, it, 'sandwich', num_random=1)[1] for it in range(30)}
    assert middles == {0.7, 0.5, 0.3}  # every middle candidate is drawn
    singles = [candidate_subset(SCALES, it, 'single')[0] for it in range(50)]
    assert set(singles) == set(SCALES)
    assert singles != [candidate_subset(SCALES, it, 'single', seed=1)[0] for it in range(50)]  # the seed matters
    assert candidate_subset(SCALES, 0, 'sandwich', num_random=3) == SCALES  # k >= m - 2: all


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="mode='pairs'"):
        check_candidates_per_step(dict(mode='pairs'))
    with pytest.raises(KeyError, match='unknown keys'):
        check_candidates_per_step(dict(mode='single', k=2))


@pytest.mark.parametrize('num_random', [1, 4])
def test_sandwich_with_k_at_least_m_minus_2_equals_all_step_for_step(teacher_ckpt, num_random):  # noqa: F811
    scales = [0.8, 0.6, 0.4]
    runs = []
    for mode in ('all', 'sandwich'):
        algo = _algorithm(teacher_ckpt, scales=scales, candidates_per_step=dict(mode=mode, num_random=num_random))
        algo.train()
        wrapper = OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=0.1))
        logs = [float(algo.train_step(_batch(), wrapper)['loss']) for _ in range(3)]
        runs.append((logs, algo.architecture.state_dict(), algo.bn_stats()))
    (logs_a, state_a, bn_a), (logs_s, state_s, bn_s) = runs
    assert logs_a == logs_s
    for k, v in state_a.items():
        assert torch.equal(v, state_s[k]), k
    for s in bn_a:
        for name in bn_a[s]:
            assert torch.equal(bn_a[s][name]['running_mean'], bn_s[s][name]['running_mean'])


def test_single_trains_one_candidate_and_the_iteration_survives_resume(teacher_ckpt):  # noqa: F811
    cfg = dict(scales=[0.8, 0.6, 0.4], candidates_per_step=dict(mode='single', seed=3))
    algo = _algorithm(teacher_ckpt, **cfg).train()
    seen, set_scale = [], algo.set_scale
    algo.set_scale = lambda s: (seen.append(s), set_scale(s))
    wrapper = OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=0.1))
    for _ in range(2):
        algo.train_step(_batch(), wrapper)
    assert seen == [candidate_subset([0.8, 0.6, 0.4], 0, 'single', seed=3)[0], None,
                    candidate_subset([0.8, 0.6, 0.4], 1, 'single', seed=3)[0], None]
    assert int(algo.state_dict()['candidate_iter']) == 2
    resumed = _algorithm(teacher_ckpt, **cfg)
    resumed.load_state_dict(algo.state_dict())
    assert resumed.step_candidates() == candidate_subset([0.8, 0.6, 0.4], 2, 'single', seed=3)
    resumed.eval()
    assert resumed.step_candidates(advance=False) == [0.8, 0.6, 0.4]  # loss() outside training: all candidates


def test_every_rank_trains_the_same_subset(tmp_path):
    spawn_on_gloo_ranks(bn_ranks.sampled_steps, 2, str(tmp_path), 4)
    r0, r1 = (torch.load(tmp_path / f'sampled_rank{r}.pth') for r in (0, 1))
    expected = [candidate_subset([0.9, 0.7, 0.5, 0.3], it, 'single', seed=5) for it in range(4)]
    assert r0['subsets'] == r1['subsets'] == expected
    for k, v in r0['params'].items():  # the last (only) candidate's backward synchronised the gradients
        assert torch.allclose(v, r1['params'][k], atol=1e-6), k


class _Recorded(list):
    """Batches that count how often they are iterated."""

    def __init__(self, items, dataset=None):
        super().__init__(items)
        self.dataset, self.reads = dataset if dataset is not None else list(range(4)), 0

    def __iter__(self):
        self.reads += 1
        return super().__iter__()


def _first_bn_input_mean(algo, batches, scale):
    """Hand computation: the mean over ``batches`` of the per-channel batch mean at the first BN's input."""
    algo.set_scale(scale)
    bn = batch_norms(algo.architecture)[0][1]
    means = []
    hook = bn.register_forward_hook(lambda m, args, out: means.append(args[0].mean((0, 2, 3))))
    algo.architecture.eval()
    with torch.no_grad():
        for b in batches:
            data = algo.data_preprocessor(b, True)
            algo.architecture(data['inputs'], data['data_samples'], mode='tensor')
    hook.remove()
    return torch.stack(means).mean(0)


def test_bn_recalibration_uses_training_batches_only(teacher_ckpt):  # noqa: F811
    algo = _algorithm(teacher_ckpt, scales=[0.8, 0.5]).eval()
    train = _Recorded([batch(1), batch(2), batch(3)])
    val = _Recorded([batch(99, 2)])
    runner = _Runner(algo)
    runner.train_dataloader = train
    stale = {s: stats['backbone.stem.1']['running_mean'].clone() for s, stats in algo.bn_stats().items()}
    recorder = StatsRecorder(algo)
    AMDCandidatesValLoop(runner, val, recorder, bn_recalibration_batches=2).run()
    assert train.reads == 2 and val.reads == 2  # one pass of training batches and one validation per candidate
    for scale in (0.8, 0.5):
        # the stem BN's statistics are the mean over the first 2 training batches (hand computation)
        expected = _first_bn_input_mean(algo, train[:2], scale)
        assert torch.allclose(recorder.seen[scale]['backbone.stem.1.running_mean'], expected, atol=1e-5)
        assert not torch.allclose(expected, stale[repr(scale)], atol=1e-3)  # the stale statistics changed
        assert torch.allclose(algo.bn_stats()[repr(scale)]['backbone.stem.1']['running_mean'], expected, atol=1e-5)


def test_no_recalibration_by_default_when_all_candidates_train(teacher_ckpt):  # noqa: F811
    algo = _algorithm(teacher_ckpt, scales=[0.8, 0.5]).eval()
    runner = _Runner(algo)
    runner.train_dataloader = _Recorded([batch(1)])
    AMDCandidatesValLoop(runner, _Recorded([batch(99, 2)]), StatsRecorder(algo)).run()
    assert runner.train_dataloader.reads == 0
    sampled = _algorithm(teacher_ckpt, scales=[0.8, 0.5], candidates_per_step=dict(mode='single')).eval()
    runner = _Runner(sampled)
    runner.train_dataloader = _Recorded([batch(1)])
    AMDCandidatesValLoop(runner, _Recorded([batch(99, 2)]), StatsRecorder(sampled)).run()
    assert runner.train_dataloader.reads == 2  # one per candidate


def test_all_candidates_step_reads_no_counter_and_runs_on_fake_cuda(teacher_ckpt):  # noqa: F811
    """With every candidate trained (the default) the step counter is only incremented on its device, never read
    on the host: reading it (int()) waited for the GPU every step, and the fake-CUDA device check stopped there and
    replayed every module of the model (the Swin-T and ViT-B AMD checks then ran past the suite's time limit)."""
    from mmkd_ext.device_check import fake_cuda_train_step
    algo = _algorithm(teacher_ckpt, scales=[0.8, 0.6, 0.4]).train()
    report = fake_cuda_train_step(algo, _batch())
    assert report.status == 'checked', report.summary()
    wrapper = OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=0.1))
    algo.train_step(_batch(), wrapper)
    assert int(algo.candidate_iter) == 1  # still counted (a later switch to a sampled mode resumes the sequence)
