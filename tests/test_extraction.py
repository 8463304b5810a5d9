"""tools/model_converters/extract_student.py: every algorithm's student, loaded by the task package's inferencer,
predicts what the student inside the distillation checkpoint predicts."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

from mmkd_ext.extraction import UnknownAlgorithmError, extract_students
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATASET_META = dict(classes=('a', 'b'))  # stands for the runner's dataset_meta; must reach the student


pytestmark = pytest.mark.usefixtures('single_torch_thread')


def config_path(*parts):
    return osp.join(ROOT, 'configs', *parts)


def perturb_(model: torch.nn.Module, seed: int) -> None:
    """Move every float weight and BN statistic away from its initial value, so that a weight the extractor
    failed to carry over shows up as a different prediction."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith('running_var'):
                tensor.mul_(1 + torch.rand(tensor.shape, generator=gen))
            else:
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=gen))


def build_and_save(cfg: Config, path: str, seed: int = 0) -> torch.nn.Module:
    """A just-built distillation algorithm (teacher not loaded), perturbed, saved as a runner would."""
    init_default_scope('mmrazor')
    model_cfg = cfg.model.copy()
    if 'teacher_ckpt' in model_cfg:
        model_cfg.teacher_ckpt = None
    torch.manual_seed(seed)
    algorithm = MODELS.build(model_cfg)
    perturb_(algorithm, seed)
    save_checkpoint(dict(state_dict=algorithm.state_dict(), meta=dict(dataset_meta=DATASET_META)), path)
    algorithm.eval()  # (MMRazor's train() override returns None)
    return algorithm


def first_test_item(cfg: Config):
    """``(batch of one test item, its image path)`` from the distillation config's test dataset."""
    from mmengine.registry import DATASETS
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    init_default_scope(dataset_cfg.pop('_scope_', 'mmrazor'))
    dataset = DATASETS.build(dataset_cfg)
    item = dataset[0]
    return pseudo_collate([item]), item['data_samples'].img_path


def inferencer_prediction(task: str, config: str, checkpoint: str, image: str):
    """The task package's inferencer on ``image``, as a data sample."""
    if task == 'cls':
        from mmpretrain.apis import ImageClassificationInferencer
        return ImageClassificationInferencer(config, pretrained=checkpoint, device='cpu')(
            image, return_datasamples=True)[0]
    if task == 'det':
        from mmdet.apis import DetInferencer
        return DetInferencer(config, checkpoint, device='cpu', show_progress=False)(
            image, return_datasamples=True)['predictions'][0]
    from mmseg.apis import MMSegInferencer
    return MMSegInferencer(config, checkpoint, device='cpu')(image, return_datasamples=True)


def assert_same_prediction(task: str, reference, extracted) -> None:
    if task == 'cls':
        torch.testing.assert_close(extracted.pred_score, reference.pred_score, atol=1e-5, rtol=1e-4)
    elif task == 'det':
        ref, got = reference.pred_instances, extracted.pred_instances
        assert len(ref) > 0
        torch.testing.assert_close(got.bboxes, ref.bboxes, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(got.scores, ref.scores, atol=1e-5, rtol=1e-4)
        assert torch.equal(got.labels, ref.labels)
    else:
        torch.testing.assert_close(extracted.seg_logits.data, reference.seg_logits.data, atol=1e-4, rtol=1e-4)
        assert torch.equal(extracted.pred_sem_seg.data, reference.pred_sem_seg.data)


def check_written(files: dict, uses_mmkd_ext: bool, scope: str) -> Config:
    cfg = Config.fromfile(files['config'])
    assert cfg.default_scope == scope and cfg.test_cfg == dict(type='TestLoop')
    assert ('custom_imports' in cfg) == uses_mmkd_ext
    ckpt = _load_checkpoint(files['checkpoint'], map_location='cpu')
    assert not any(k.startswith(('architecture.', 'teacher', 'distiller', 'student_')) for k in ckpt['state_dict'])
    return ckpt


CASES = [  # (config, task, data fixture, the student uses an mmkd_ext backbone)
    ('kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py', 'cls', 'digits_root', True),  # SingleTeacherDistill
    ('kd/cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py', 'det', 'shapes_root', False),  # FpnTeacher..
    ('kd/cwd_logits_pspnet_r18-d8_fcn_r18-w32-d8_1xb4-600it_cityscapes-demo.py', 'seg', 'cityscapes_root', False),
    ('fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py', 'cls', 'digits_root', True),
    ('vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py', 'cls', 'digits_root', True),
    ('kd_zero/kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py', 'cls', 'digits_root', True),
    ('kd_zero/kd_zero_pspnet-r18_fcn-r18-w32_1xb4-600it_cityscapes-demo.py', 'seg', 'cityscapes_root', False),
]
SCOPES = dict(cls='mmpretrain', det='mmdet', seg='mmseg')


@pytest.mark.parametrize('config,task,data,uses_mmkd_ext', CASES, ids=[c[0].split('/')[0] + '-' + c[1] for c in CASES])
def test_extracted_student_predicts_like_the_student_in_the_checkpoint(config, task, data, uses_mmkd_ext, tmp_path,
                                                                        request):
    request.getfixturevalue(data)
    cfg = Config.fromfile(config_path(config))
    algorithm = build_and_save(cfg, str(tmp_path / 'distill.pth'))
    batch, image = first_test_item(cfg)
    with torch.no_grad():
        reference = algorithm.test_step(batch)[0]
    files = extract_students(config_path(config), str(tmp_path / 'distill.pth'), str(tmp_path / 'out'))['student']
    ckpt = check_written(files, uses_mmkd_ext, SCOPES[task])
    assert ckpt['meta']['dataset_meta'] == DATASET_META
    assert_same_prediction(task, reference, inferencer_prediction(task, files['config'], files['checkpoint'], image))


def test_every_acmkd_student_is_extracted_with_the_weights_export_students_writes(tmp_path, digits_root):
    from mmkd_ext.acmkd.export import export_students
    config = config_path('acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')
    cfg = Config.fromfile(config)
    algorithm = build_and_save(cfg, str(tmp_path / 'acmkd.pth'))
    batch, image = first_test_item(cfg)
    written = extract_students(config, str(tmp_path / 'acmkd.pth'), str(tmp_path / 'out'))
    assert sorted(written) == ['rednet', 'resnet8', 'vit']
    exported = export_students(str(tmp_path / 'acmkd.pth'), str(tmp_path / 'exported'))
    for name, files in written.items():
        ckpt = check_written(files, uses_mmkd_ext=name in ('resnet8', 'rednet'), scope='mmpretrain')
        theirs = _load_checkpoint(exported[name], map_location='cpu')['state_dict']
        assert ckpt['state_dict'].keys() == theirs.keys()
        assert all(torch.equal(ckpt['state_dict'][k], theirs[k]) for k in theirs)
        with torch.no_grad():
            reference = algorithm.student(name).test_step(batch)[0]
        assert_same_prediction('cls', reference, inferencer_prediction('cls', files['config'], files['checkpoint'],
                                                                       image))
    only = extract_students(config, str(tmp_path / 'acmkd.pth'), str(tmp_path / 'one'), ['vit'])
    assert list(only) == ['vit'] and not osp.exists(tmp_path / 'one' / 'resnet8.py')


def amd_chain_without_training(tmp_path) -> tuple:
    """A real AMD chain (importance, export: AMD's own code) whose training stages are replaced by their starting
    point, the teacher's weights (perturbed), so the test needs no training runs. Returns (config, work dir)."""
    from amd.test_pipeline import DEMO, TINY  # a resnet8 teacher, the student at 40% of its FLOPs

    from mmkd_ext.amd.pipeline import AMDPipeline
    config = tmp_path / 'amd_tiny.py'
    config.write_text(TINY.format(demo=DEMO, ckpt='unused', epochs=1))
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(str(config)).model.teacher)
    perturb_(teacher, 1)
    torch.save({'state_dict': teacher.state_dict(), 'bn_stats': {}}, str(tmp_path / 'teacher.pth'))
    config.write_text(TINY.format(demo=DEMO, ckpt=str(tmp_path / 'teacher.pth'), epochs=1))
    work = str(tmp_path / 'work')
    pipe = AMDPipeline(Config.fromfile(str(config)), work, log=lambda *_: None)
    pipe.run(until='importance')
    weights = str(tmp_path / 'teacher.pth')
    pipe.state.record('joint_1', dict(scales=[0.7, 0.4], metrics={}, student=weights))
    pipe.state.record('select_1', dict(scales=[0.7, 0.4], selected_index=0, selected_scale=0.7))
    pipe.state.record('final', dict(metrics={}, student=weights, student_accuracy=0.0, ta_scale=0.7, trained=True))
    pipe.run()
    return str(config), work


def test_amd_student_is_the_pruned_export_and_predicts_like_the_masked_network(tmp_path, digits_root):
    from mmkd_ext.amd.bn_stats import load_bn_stats
    from mmkd_ext.amd.pruner import AMDPruner, load_scores
    config, work = amd_chain_without_training(tmp_path)
    with pytest.raises(FileNotFoundError, match='not in an AMD work dir'):
        extract_students(config, str(tmp_path), str(tmp_path / 'out'))
    files = extract_students(config, osp.join(work, 'export'), str(tmp_path / 'out'))['student']
    ckpt = check_written(files, uses_mmkd_ext=True, scope='mmpretrain')
    with open(osp.join(work, 'amd_state.json')) as f:
        state = json.load(f)
    exported = _load_checkpoint(state['export']['student']['checkpoint'], map_location='cpu')
    assert ckpt['state_dict'].keys() == exported['state_dict'].keys()
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in exported['state_dict'].items())
    assert ckpt['meta']['amd_widths'] == exported['meta']['amd_widths']
    # the student inside the chain: the final network masked to the target scale, with its own BN statistics
    masked = MODELS.build(Config.fromfile(config).model.architecture)
    loaded = load_checkpoint(masked, state['final']['student'], map_location='cpu')
    load_bn_stats(masked, loaded['bn_stats'], 0.4)
    pruner = AMDPruner(masked, (3, 32, 32))
    pruner.set_scores(load_scores(state['importance']['scores']))
    pruner.apply(0.4)
    batch, image = first_test_item(Config.fromfile(config))
    with torch.no_grad():
        reference = masked.eval().test_step(batch)[0]
    assert_same_prediction('cls', reference, inferencer_prediction('cls', files['config'], files['checkpoint'], image))


def test_unknown_algorithm_and_wrong_checkpoint_are_clear_errors(tmp_path, digits_root):
    cfg = Config.fromfile(config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'))
    cfg.model.type = 'MyDistill'
    with pytest.raises(UnknownAlgorithmError, match="no student extractor for model type 'MyDistill'"):
        extract_students(cfg, 'unused.pth', str(tmp_path))
    plain = config_path('kd', 'resnet8x0.5_1xb32-30e_digits.py')  # a plain classifier checkpoint, no architecture.
    save_checkpoint(dict(state_dict=dict(MODELS.build(Config.fromfile(plain).model).state_dict())),
                    str(tmp_path / 'plain.pth'))
    with pytest.raises(KeyError, match="no weights under 'architecture.'"):
        extract_students(config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'),
                         str(tmp_path / 'plain.pth'), str(tmp_path))


def test_cfg_path_student_becomes_a_plain_mmpretrain_config_without_mmkd_ext(tmp_path):
    """MMRazor's ``architecture=dict(cfg_path='mmpretrain::...')``: the referenced model, with the referenced config's
    top-level data_preprocessor (as the Runner adds it), no custom_imports (no mmkd_ext class in it)."""
    config = config_path('kd', 'kd_logits_resnet34_resnet18_8xb32-100e_in1k.py')
    reference = Config.fromfile('mmpretrain::resnet/resnet18_8xb32_in1k.py')
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    student = MODELS.build(dict(reference.model.to_dict(), _scope_='mmpretrain'))
    save_checkpoint(dict(state_dict={f'architecture.{k}': v for k, v in student.state_dict().items()}),
                    str(tmp_path / 'distill.pth'))
    files = extract_students(config, str(tmp_path / 'distill.pth'), str(tmp_path / 'out'))['student']
    ckpt = check_written(files, uses_mmkd_ext=False, scope='mmpretrain')
    written = Config.fromfile(files['config'])
    assert written.model.backbone == reference.model.backbone
    assert written.model.data_preprocessor.mean == reference.data_preprocessor.mean
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in student.state_dict().items())
