"""Clear errors for a wrong recorder source and for student/teacher shape mismatches."""
import pytest
import torch
from mmrazor.registry import MODELS

from mmkd_ext.checks import check_same_shape


def classifier(num_classes):
    return dict(_scope_='mmpretrain', type='ImageClassifier', backbone=dict(type='CIFARResNet', arch='resnet8'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64))


def kd(source='head.fc', student_classes=4, teacher_classes=4):
    return dict(
        _scope_='mmrazor', type='SingleTeacherDistill', architecture=classifier(student_classes),
        teacher=classifier(teacher_classes),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fc=dict(type='ModuleOutputs', source=source)),
            teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
            distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=4)),
            loss_forward_mappings=dict(loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'), preds_T=dict(from_student=False, recorder='fc')))))


def test_wrong_recorder_source_names_the_model_and_close_matches():
    with pytest.raises(KeyError) as err:
        MODELS.build(kd(source='head.fcc'))
    msg = str(err.value)
    assert "'head.fcc' is not a module of ImageClassifier" in msg
    assert "did you mean 'head.fc'" in msg


def test_wrong_recorder_source_is_also_mmrazors_assertion_error_with_its_text():
    """MMRazor's own recorder test expects ``AssertionError`` with ``'"conv3" is not in'``; callers of mmkd_ext
    catch ``KeyError``: the error is both, and keeps MMRazor's text."""
    from mmrazor.models.task_modules.recorder import ModuleOutputsRecorder
    model = torch.nn.Sequential()
    model.add_module('conv1', torch.nn.Conv2d(1, 1, 1))
    recorder = ModuleOutputsRecorder('conv3')
    with pytest.raises(AssertionError, match='"conv3" is not in the model.') as err:
        recorder.prepare_from_model(model)
    assert isinstance(err.value, KeyError)
    assert str(err.value).startswith('"conv3" is not in the model. ModuleOutputsRecorder source \'conv3\'')


def test_logits_of_different_class_counts_name_both_shapes():
    from mmpretrain.structures import DataSample
    algo = MODELS.build(kd(student_classes=4, teacher_classes=7))
    samples = [DataSample().set_gt_label(0) for _ in range(2)]
    with pytest.raises(ValueError) as err:
        algo.loss(torch.randn(2, 3, 32, 32), samples)
    msg = str(err.value)
    assert 'KLDivergence' in msg and '(2, 4)' in msg and '(2, 7)' in msg and 'num_classes' in msg


def test_feature_shape_mismatch_suggests_a_connector():
    with pytest.raises(ValueError, match='ConvModuleConnector'):
        check_same_shape('ChannelWiseDivergence', torch.zeros(1, 8, 4, 4), torch.zeros(1, 16, 4, 4))


def test_a_top_level_variable_the_config_already_copied_is_refused_naming_the_real_key(tmp_path):
    """FKD training ignored a top-level ``store_dir=`` (issue 18, item 4): tools/train.py now refuses it."""
    from tools.train import main
    config = 'configs/fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py'
    with pytest.raises(KeyError, match=r'store_dir=/x/labels would change nothing.*'
                                       r'--cfg-options train_dataloader\.dataset\.store_dir=/x/labels'):
        main([config, '--work-dir', str(tmp_path), '--cfg-options', 'store_dir=/x/labels'])


def test_options_the_runner_reads_or_nested_keys_are_accepted():
    from mmengine.config import Config

    from mmkd_ext.checks import check_cfg_options
    cfg = Config.fromfile('configs/fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py')
    check_cfg_options(cfg, {'default_scope': 'mmpretrain', 'train_dataloader.dataset.store_dir': '/x',
                            'work_dir': 'work_dirs/fkd_resnet20_resnet8x0.5_1xb32-30e_digits'})


STUDENT = 'configs/kd/resnet8x0.5_1xb32-30e_digits.py'
KD = 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'


@pytest.mark.parametrize('option, message', [
    ('randomnes.seed=5', r"randomnes\.seed=5: the config \(top level\) has no key 'randomnes'; did you mean "
                         r"'randomness\.seed'\?"),
    ('default_hooks.checkpoint.max_keep_ckpt=1',
     r"default_hooks\.checkpoint \('CheckpointHook'\) has no key 'max_keep_ckpt'; did you mean "
     r"'default_hooks\.checkpoint\.max_keep_ckpts'"),
    ('train_cfg.max_epoch=1', r"train_cfg \(EpochBasedTrainLoop / IterBasedTrainLoop\) has no key 'max_epoch'; did "
                              r"you mean 'train_cfg\.max_epochs'"),
])
def test_a_misspelt_option_key_is_refused_before_training_naming_the_closest_key(tmp_path, option, message):
    """``randomnes.seed=5`` trained with seed 0; ``max_keep_ckpt`` failed after the first epoch (issue 24, item 4)."""
    from mmkd_ext.checks import UnknownOptionKeyError
    from tools.train import main
    with pytest.raises(KeyError, match=message) as err:
        main([STUDENT, '--work-dir', str(tmp_path), '--cfg-options', option])
    assert isinstance(err.value, UnknownOptionKeyError)
    assert not list(tmp_path.iterdir())  # refused before the Runner made its work dir


def test_a_misspelt_argument_of_a_typed_setting_is_refused():
    from mmengine.config import Config

    from mmkd_ext.checks import check_cfg_options
    with pytest.raises(KeyError, match=r"model\.distiller\.distill_losses\.loss_kl \('KLDivergence'\) has no key "
                                       r"'taux'; did you mean 'model\.distiller\.distill_losses\.loss_kl\.tau'"):
        check_cfg_options(Config.fromfile(KD), {'model.distiller.distill_losses.loss_kl.taux': 2})


def test_new_keys_the_enclosing_type_takes_or_mmkd_ext_documents_are_accepted():
    """Arguments of the class a dict builds (dataset ``indices``, MMRazor's ``teacher_ckpt`` and mmkd_ext's
    ``teacher_ckpt_strict``, loop ``val_begin``), Runner arguments and ``load_from_strict`` at the top level."""
    from mmengine.config import Config

    from mmkd_ext.checks import check_cfg_options
    cfg = Config.fromfile(KD)
    del cfg.model['teacher_ckpt']
    check_cfg_options(cfg, {
        'train_dataloader.dataset.indices': 32, 'model.teacher_ckpt': 'x.pth', 'model.teacher_ckpt_strict': False,
        'train_cfg.val_begin': 2, 'load_from_strict': False, 'log_level': 'WARNING', 'randomness.deterministic': True,
        'custom_hooks': [dict(type='EMAHook')], 'default_hooks.checkpoint.max_keep_ckpts': 1,
        'default_hooks.checkpoint.save_best': 'auto', 'model.distiller.distill_losses.loss_kl.loss_weight': 2.0,
        'env_cfg.cudnn_benchmark': True, 'visualizer.vis_backends.0.type': 'LocalVisBackend',
        'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.loss_scale': 'dynamic'})  # the new type's argument


def test_a_student_head_with_fewer_classes_than_the_labels_is_an_error_before_training(tmp_path, digits_root):
    from mmkd_ext.checks import TooFewClassesError
    from tools.train import main
    config = 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'
    with pytest.raises(IndexError) as err:  # the type PyTorch's cross-entropy raises
        main([config, '--work-dir', str(tmp_path), '--cfg-options', 'model.teacher_ckpt=None',
              'model.architecture.head.num_classes=5', 'model.teacher.head.num_classes=5'])
    assert isinstance(err.value, TooFewClassesError)
    assert "student head 'architecture.head'" in str(err.value) and 'num_classes=10' in str(err.value)
    assert not (tmp_path / 'epoch_1.pth').exists()


@pytest.mark.parametrize('loss_type, names', [('DISTLoss', ('logits_S', 'logits_T')),
                                               ('L2Loss', ('s_feature', 't_feature')),
                                               ('KLDivergence', ('preds_S', 'preds_T'))])
def test_the_shape_check_takes_each_loss_by_its_own_argument_names(loss_type, names):
    """MMRazor calls a loss with the keys of its ``loss_forward_mappings``: DIST's ``logits_S``, L2's ``s_feature``.
    The shape check once assumed ``preds_S``/``preds_T`` and broke every DIST and L2 config (TypeError)."""
    loss = MODELS.build(dict(_scope_='mmrazor', type=loss_type))
    student, teacher = torch.randn(4, 10), torch.randn(4, 10)
    unchecked = type(loss).forward.__wrapped__(loss, student, teacher)  # the upstream forward
    assert torch.equal(loss(**{names[0]: student, names[1]: teacher}), unchecked)
    assert torch.equal(loss(student, teacher), unchecked)
    with pytest.raises(ValueError, match=r'\(4, 10\).*\(4, 7\)'):
        loss(**{names[0]: student, names[1]: torch.randn(4, 7)})


def test_a_pooled_map_against_flat_features_is_viewed_as_the_students_shape_not_broadcast():
    """MMRazor's BYOT config compares (N, 512) connector outputs with ``neck.gap``'s (N, 512, 1, 1): broadcast, the L2
    loss summed over (N, 512, N, 512) pairs of different samples. It is computed on the matching elements instead."""
    loss = MODELS.build(dict(_scope_='mmrazor', type='L2Loss', normalize=False, dist=True))
    student, teacher = torch.randn(3, 8), torch.randn(3, 8, 1, 1)
    expected = (student - teacher.reshape(3, 8)).pow(2).sum().sqrt()
    assert torch.allclose(loss(s_feature=student, t_feature=teacher), expected)
    with pytest.raises(ValueError, match='differ'):  # not a size-1 difference: still an error
        loss(s_feature=student, t_feature=torch.randn(3, 4, 2, 1))
