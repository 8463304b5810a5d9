"""AMD under 2 gloo processes: the per-candidate DDP step and the importance scores equal one process on the
whole batch; the pipeline writes its files from rank 0 only and reaches the one-process result."""
import json

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from mmkd_ext.amd.algorithm import AMDDistill
from mmkd_ext.amd.importance import estimate_importance
from mmkd_ext.amd.pruner import AMDPruner, load_scores
from mmkd_ext.amd.wrapper import AMDDistributedDataParallel

from . import bn_ranks, test_pipeline
from .bn_ranks import spawn_on_gloo_ranks
from .conftest import INPUT, tiny_vit
from .test_importance import X
from .test_importance import _setup as two_head_setup

teacher_ckpt = test_pipeline.teacher_ckpt  # the fixture: a random resnet8 teacher checkpoint
PRE = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)
VIT = dict(tiny_vit(), data_preprocessor=PRE)
SCALES = [0.8, 0.5]


def _vit_algorithm(scores):
    torch.manual_seed(0)
    algo = AMDDistill(architecture=VIT, teacher=VIT, teacher_ckpt=None, student_ckpt=None, scales=SCALES,
                      pruner=dict(input_shape=INPUT), importance_file=scores,
                      logit_module='head.layers.head', feature_modules=['backbone.layers.1'])
    return algo.train()


def _batch(first, n):
    g = torch.Generator().manual_seed(7)
    images = [torch.randint(0, 256, INPUT, generator=g, dtype=torch.uint8) for _ in range(4)]
    labels = range(first, first + n)
    return dict(inputs=images[first:first + n], data_samples=[DataSample().set_gt_label(i) for i in labels])


def _amd_step(rank, scores, out):
    algo = _vit_algorithm(scores)
    ddp = AMDDistributedDataParallel(module=algo, device_ids=None)
    wrapper = OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=1.0))
    log = ddp.train_step(_batch(2 * rank, 2), wrapper)  # each rank: half of the 4-image batch
    torch.save(dict(params={k: v.detach() for k, v in algo.architecture.named_parameters()},
                    loss=float(log['loss'])), f'{out}/amd_rank{rank}.pth')


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp('two_ranks')
    torch.manual_seed(0)
    from mmkd_ext.registry import MODELS
    pruner = AMDPruner(MODELS.build(VIT), INPUT)
    g = torch.Generator().manual_seed(3)
    scores = str(out / 'scores.pth')
    torch.save({'scores': {u.name: torch.rand(u.num_masks, generator=g) + 0.1 for u in pruner.units}}, scores)
    pruner.masks.remove()
    run_on_gloo_ranks(_amd_step, 2, scores, str(out))
    return out, scores


def test_amd_ddp_step_equals_one_process_on_the_whole_batch(two_ranks):
    out, scores = two_ranks
    algo = _vit_algorithm(scores)
    algo.train_step(_batch(0, 4), OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=1.0)))
    ranks = [torch.load(f'{out}/amd_rank{r}.pth') for r in (0, 1)]
    for name, p in algo.architecture.named_parameters():
        for r in ranks:  # DDP's averaged gradient of the half-batch losses = the gradient of the whole-batch loss
            assert torch.allclose(r['params'][name], p.detach(), atol=1e-5), name
    assert ranks[0]['loss'] != ranks[1]['loss']  # the ranks did see different images



# ------------------------------------------------------------------ importance and the pipeline on 2 ranks
def _importance_on_my_example(rank, out):
    model, masks = two_head_setup()
    scores = estimate_importance(masks, [X[rank:rank + 1]], lambda x: model(x), granularity='sample')
    torch.save(scores, f'{out}/importance_rank{rank}.pth')


def test_importance_is_the_mean_over_every_rank_s_examples(tmp_path):
    run_on_gloo_ranks(_importance_on_my_example, 2, str(tmp_path))
    model, masks = two_head_setup()
    expected = estimate_importance(masks, [X], lambda x: model(x), granularity='sample')  # one process, both rows
    for r in (0, 1):
        assert torch.allclose(torch.load(tmp_path / f'importance_rank{r}.pth')['attn'], expected['attn'])


# shrunk: the target is selected (NPSD threshold never reached), so no final training; no dataset serialisation
FAST = ['--cfg-options', 'amd.selection.npsd_threshold=1e9', 'train_dataloader.dataset.serialize_data=False',
        'val_dataloader.dataset.serialize_data=False']


def _pipeline_rank(rank, config, work, out):
    """Run tools/amd/run.py on this rank; record every file this rank opens for writing under ``work``."""
    import builtins

    from tools.amd.run import main
    real_open, real_save, writes = builtins.open, torch.save, []

    def recording_open(file, mode='r', *args, **kwargs):
        if any(c in mode for c in 'wax') and str(file).startswith(work):
            writes.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def recording_save(obj, f, *args, **kwargs):  # torch.save writes a path from C++, not through open()
        if str(f).startswith(work):
            writes.append(str(f))
        return real_save(obj, f, *args, **kwargs)

    real_step, steps = AMDDistributedDataParallel.train_step, []

    def counting_step(self, *args, **kwargs):  # the configs' model_wrapper_cfg is the one in use
        steps.append(1)
        return real_step(self, *args, **kwargs)

    builtins.open, torch.save, AMDDistributedDataParallel.train_step = recording_open, recording_save, counting_step
    try:
        state = main([config, '--work-dir', work, '--launcher', 'pytorch', *FAST])
    finally:
        builtins.open, torch.save, AMDDistributedDataParallel.train_step = real_open, real_save, real_step
    torch.save(dict(state=state, writes=writes, steps=len(steps)), f'{out}/pipeline_rank{rank}.pth')


def _summary(state):
    return dict(stages=list(state), scores=load_scores(state['importance']['scores']),
                selected=state['select_1']['selected_scale'],
                exported={k: (v['params'], v['flops']) for k, v in state['export'].items() if k != 'wall_s'})


def test_two_process_pipeline_writes_from_rank_0_only_and_equals_one_process(tmp_path, teacher_ckpt):
    config = test_pipeline._write_config(tmp_path, teacher_ckpt, 1)
    run_on_gloo_ranks(_pipeline_rank, 2, config, str(tmp_path / 'two'), str(tmp_path))
    ranks = [torch.load(tmp_path / f'pipeline_rank{r}.pth', weights_only=False) for r in (0, 1)]
    assert ranks[0]['steps'] == ranks[1]['steps'] > 0  # training steps went through AMDDistributedDataParallel
    assert ranks[1]['writes'] == []  # rank 1 wrote nothing under the work dir
    assert any(w.endswith('scores.pth') for w in ranks[0]['writes'])
    assert any('amd_state.json' in w for w in ranks[0]['writes'])
    with open(tmp_path / 'two' / 'amd_state.json') as f:
        on_disk = json.load(f)
    assert list(on_disk) == list(ranks[0]['state']) == list(ranks[1]['state'])
    one = _summary(main_one_process(config, str(tmp_path / 'one')))
    for two in (_summary(r['state']) for r in ranks):
        assert two['stages'] == one['stages'] and two['selected'] == one['selected']
        assert two['exported'] == one['exported']
        assert all(torch.equal(two['scores'][k], one['scores'][k]) for k in one['scores'])


def main_one_process(config, work):
    from tools.amd.run import main
    return main([config, '--work-dir', work, *FAST])


# ------------------------------------------------------------------ issue 23 defect 7: BN statistics at validation
def test_ranks_validate_every_candidate_with_the_same_bn_statistics(tmp_path):
    spawn_on_gloo_ranks(bn_ranks.train_then_validate, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f'bn_rank{r}.pth') for r in (0, 1)]
    for scale in ('0.8', '0.5'):  # the candidates after the first ran under no_sync: each rank its own statistics
        assert any(not torch.equal(v, ranks[1]['trained'][scale][k]) for k, v in ranks[0]['trained'][scale].items())
    assert sorted(ranks[0]['validated']) == sorted(ranks[1]['validated']) == [0.5, 0.8]
    for scale, stats in ranks[0]['validated'].items():  # ... and rank 0's at validation, on every rank
        assert stats.keys() == ranks[1]['validated'][scale].keys()
        for key, value in stats.items():
            assert torch.equal(value, ranks[1]['validated'][scale][key]), (scale, key)
        trained = ranks[0]['trained'][repr(scale)]
        for key, value in trained.items():
            assert torch.equal(stats[f'{key}.running_mean'], value), (scale, key)  # rank 0's trained statistics
