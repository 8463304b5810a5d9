"""The student as ONNX (mmkd_ext/deploy.py, extract_student.py --onnx, tools/deployment/export_onnx.py): onnxruntime
predicts what the student inside the distillation checkpoint predicts, on the test pipeline's image, for any batch
size; the exported AMD student has the pruned network's parameters and MACs, not the teacher's."""
import importlib.util
import os.path as osp

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from mmengine.config import Config
from test_extraction import amd_chain_without_training, build_and_save, config_path, first_test_item
from torch import nn

from mmkd_ext import deploy
from mmkd_ext.deploy import DeployedStudent, NotExportableError, ParityError, check_parity, export_onnx, onnx_stats
from mmkd_ext.extraction import extract_students
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
pytestmark = pytest.mark.usefixtures('single_torch_thread')


def load_tool(*parts: str):
    """A script under tools/ as a module."""
    spec = importlib.util.spec_from_file_location('tool_' + parts[-1][:-3], osp.join(ROOT, 'tools', *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export_tool = load_tool('deployment', 'export_onnx.py')
extract_student = load_tool('model_converters', 'extract_student.py')


def ort_run(path: str, images: torch.Tensor) -> list:
    return onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider']).run(None, {'images': images.numpy()})


def item_images(batch: dict) -> torch.Tensor:
    """The packed test image(s) of a pseudo-collated batch as the graph takes them (float pixels)."""
    return torch.stack(batch['inputs']).float()


def assert_dynamic_batch(path: str) -> None:
    graph = onnx.load(path).graph
    for value in (*graph.input, *graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == 'batch', value.name


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # the TorchScript exporter's notice
def test_onnx_stats_counts_parameters_and_macs_of_a_hand_built_graph(tmp_path):
    """Conv 3->4 3x3 (pad 1) on 8x8, flatten, Linear 256->5: params 4*27+4 + 256*5+5 = 1397; MACs per image
    8*8*4*27 + 256*5 = 6912 + 1280 = 8192, whatever the batch the graph is run with."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 5)).eval()
    path = str(tmp_path / 'tiny.onnx')
    torch.onnx.export(net, (torch.rand(2, 3, 8, 8), ), path, dynamo=False, input_names=['images'],
                      output_names=['out'], dynamic_axes={'images': {0: 'batch'}, 'out': {0: 'batch'}})
    stats = onnx_stats(path)
    assert stats['params'] == 1397 and stats['macs'] == 8192
    assert stats['megabytes'] == pytest.approx(osp.getsize(path) / 2**20)


def test_digits_student_via_extract_student_onnx_scores_match_the_checkpoint(tmp_path, digits_root, capsys):
    config = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')
    cfg = Config.fromfile(config)
    algorithm = build_and_save(cfg, str(tmp_path / 'distill.pth'))
    batch, _ = first_test_item(cfg)
    with torch.no_grad():
        reference = algorithm.test_step(batch)[0].pred_score
    written = extract_student.main([config, str(tmp_path / 'distill.pth'), '--out', str(tmp_path / 'out'), '--onnx',
                                    '--output', 'scores'])
    path = written['student']['onnx']
    assert path == str(tmp_path / 'out' / 'student.onnx')
    printed = capsys.readouterr().out
    assert 'input images N x 3 x 32 x 32' in printed and 'batches [1, 3, 4]' in printed and ': ok' in printed
    assert_dynamic_batch(path)
    image = item_images(batch)
    (scores, ) = ort_run(path, image)
    torch.testing.assert_close(torch.from_numpy(scores[0]), reference, atol=1e-5, rtol=1e-4)
    (five, ) = ort_run(path, image.repeat(5, 1, 1, 1))  # the batch axis is dynamic: 5 rows, all the same
    assert five.shape == (5, 10) and np.allclose(five, scores[0], atol=1e-6)


def exported_architecture_student(config_name: str, tmp_path) -> tuple:
    """configs/kd/<config_name> built and saved, its student extracted and exported by export_onnx.py.
    Returns (the first test item's batch, the checkpoint's prediction on it, the extracted files, the report)."""
    config = config_path('kd', config_name)
    cfg = Config.fromfile(config)
    algorithm = build_and_save(cfg, str(tmp_path / 'distill.pth'))
    batch, _ = first_test_item(cfg)
    with torch.no_grad():
        reference = algorithm.test_step(batch)[0]
    files = extract_students(config, str(tmp_path / 'distill.pth'), str(tmp_path / 'out'))['student']
    report = export_tool.main([files['config'], files['checkpoint'], '--out', str(tmp_path / 'student.onnx')])
    return batch, reference, files, report


def test_cityscapes_demo_student_whole_image_logits_match_the_checkpoint(tmp_path, cityscapes_root):
    batch, reference, _, report = exported_architecture_student(
        'cwd_logits_pspnet_r18-d8_fcn_r18-w32-d8_1xb4-600it_cityscapes-demo.py', tmp_path)
    assert report.outputs == ['seg_logits'] and not report.parity.failures
    image = item_images(batch)
    assert report.input_size == tuple(image.shape[-2:]) == tuple(reference.seg_logits.shape[-2:])
    (logits, ) = ort_run(report.path, image)
    torch.testing.assert_close(torch.from_numpy(logits[0]), reference.seg_logits.data, atol=1e-4, rtol=1e-4)
    assert torch.equal(torch.from_numpy(logits[0]).argmax(0), reference.pred_sem_seg.data[0])
    assert_dynamic_batch(report.path)


def torch_size(model: nn.Module, image_size: int) -> tuple:
    """(parameters the ONNX graph holds, MACs per image) of a conv/BN/linear classifier, counted on the PyTorch
    side: each BatchNorm folds into the conv before it (its 2C weights become the conv's C biases); a conv's MACs
    are its output elements times in_channels / groups * kh * kw, a linear's its outputs times in_features."""
    params = sum(p.numel() for p in model.parameters())
    params -= sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    macs = []

    def count(module, inputs, output):
        per_out = module.in_channels // module.groups * int(np.prod(module.kernel_size)) \
            if isinstance(module, nn.Conv2d) else module.in_features
        macs.append(output[0].numel() * per_out)

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.rand(1, 3, image_size, image_size), mode='tensor')
    for hook in hooks:
        hook.remove()
    return params, sum(macs)


def test_amd_pruned_student_onnx_has_the_pruned_size_not_the_teachers(tmp_path, digits_root):
    config, work = amd_chain_without_training(tmp_path)
    written = extract_student.main([config, osp.join(work, 'export'), '--out', str(tmp_path / 'out'), '--onnx'])
    stats = onnx_stats(written['student']['onnx'])
    pruned, _ = deploy.load_student(written['student']['config'], written['student']['checkpoint'])
    teacher = MODELS.build(Config.fromfile(config).model.architecture).eval()  # the unpruned network
    (params, macs), (teacher_params, teacher_macs) = torch_size(pruned, 32), torch_size(teacher, 32)
    # + the preprocessor's mean and std in the graph: 3 values each, equal here (127.5), stored once
    assert (stats['params'], stats['macs']) == (params + 3, macs)
    assert params < teacher_params and macs < 0.7 * teacher_macs  # AMD's target: 40% of the teacher's FLOPs


def test_acmkd_rednet_and_vit_students_match_the_checkpoint(tmp_path, digits_root):
    config = config_path('acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')
    cfg = Config.fromfile(config)
    algorithm = build_and_save(cfg, str(tmp_path / 'acmkd.pth'))
    batch, _ = first_test_item(cfg)
    written = extract_students(config, str(tmp_path / 'acmkd.pth'), str(tmp_path / 'out'), ['rednet', 'vit'])
    for name, files in written.items():
        report = export_tool.main([files['config'], files['checkpoint'], '--out', str(tmp_path / f'{name}.onnx'),
                                   '--output', 'scores'])
        assert not report.parity.failures
        with torch.no_grad():
            reference = algorithm.student(name).test_step(batch)[0].pred_score
        (scores, ) = ort_run(report.path, item_images(batch))
        torch.testing.assert_close(torch.from_numpy(scores[0]), reference, atol=1e-5, rtol=1e-4)


def test_stale_onnx_fails_parity_and_the_tool_exits_with_the_message(tmp_path, monkeypatch):
    from amd.conftest import cifar_resnet
    torch.manual_seed(0)
    module = DeployedStudent(MODELS.build(cifar_resnet('resnet8')).eval())
    path = str(tmp_path / 'r8.onnx')
    export_onnx(module, path, (32, 32))
    assert not check_parity(module, path, (32, 32)).failures
    with torch.no_grad():
        module.model.head.fc.bias.add_(1.0)  # new weights, old file
    with pytest.raises(ParityError, match=r"logits \(batch 1\): 10 of 10 elements out of tolerance"):
        check_parity(module, path, (32, 32))

    def stale(*args, **kwargs):
        return check_parity(module, path, (32, 32))

    monkeypatch.setattr(deploy, 'export_student', stale)
    with pytest.raises(SystemExit, match='ONNX export of student.py failed: .*onnxruntime does not reproduce') as exit:
        export_tool.main(['student.py', '--out', path])
    assert exit.value.code != 0


def test_two_stage_detector_is_a_clear_error():
    cfg = Config.fromfile('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(dict(cfg.model, _scope_='mmdet'))
    with pytest.raises(NotExportableError, match='only single-stage detectors'):
        DeployedStudent(model)


def test_single_stage_detector_raw_outputs_decode_to_the_checkpoints_detections(tmp_path, shapes_root):
    """The graph ends at RetinaNet's head; the head's own post-processing on onnxruntime's outputs gives the boxes,
    scores and labels of the student inside the distillation checkpoint."""
    batch, reference, files, report = exported_architecture_student(
        'cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py', tmp_path)
    levels = range(5)  # FPN levels P3-P7
    assert report.outputs == [f'cls_score_{i}' for i in levels] + [f'bbox_pred_{i}' for i in levels]
    assert not report.parity.failures and 'NMS outside the graph' in report.notes[0]
    outputs = [torch.from_numpy(o) for o in ort_run(report.path, item_images(batch))]
    student, _ = deploy.load_student(files['config'], files['checkpoint'])
    with torch.no_grad():
        got = student.bbox_head.predict_by_feat(outputs[:5], outputs[5:], batch_img_metas=[reference.metainfo],
                                                rescale=True)[0]
    want = reference.pred_instances
    assert len(want) > 0
    torch.testing.assert_close(got.bboxes, want.bboxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(got.scores, want.scores, atol=1e-5, rtol=1e-4)
    assert torch.equal(got.labels, want.labels)


def test_pspnet_at_a_size_its_pyramid_pooling_cannot_export_is_a_clear_error_and_exports_at_a_multiple_of_48(
        tmp_path):
    """PSPNet pools the 1/8 feature map into 1, 2, 3 and 6 bins; ONNX's pooling needs bins dividing the map:
    128 x 256 (map 16 x 32) does not export, 144 x 288 (map 18 x 36) does, with parity."""
    cfg = Config.fromfile(config_path('kd', 'pspnet_r18-d8_1xb4-600it_cityscapes-demo.py'))
    torch.manual_seed(0)
    module = DeployedStudent(MODELS.build(dict(cfg.model, _scope_='mmseg')))
    with pytest.raises(NotExportableError, match='(?s)adaptive_avg_pool2d.*multiples of 48'):
        export_onnx(module, str(tmp_path / 'psp.onnx'), (128, 256))
    export_onnx(module, str(tmp_path / 'psp.onnx'), (144, 288))
    assert not check_parity(module, str(tmp_path / 'psp.onnx'), (144, 288), batches=(1, 3)).failures
