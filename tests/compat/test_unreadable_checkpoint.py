"""A truncated, empty or text checkpoint names its file on every read path (issue 24, item 3).

torch says ``PytorchStreamReader failed reading zip archive``, ``EOFError`` or ``Unsupported operand`` without the path;
the error raised instead is a subclass of torch's type (code catching that still catches it) that keeps its text."""
import pickle

import pytest
import torch
from conftest import config_path
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from mmkd_ext.compat.checkpoint import UnreadableCheckpointError, load_checkpoint_file
from mmkd_ext.registry import MODELS

STUDENT = config_path('kd', 'resnet8x0.5_1xb32-30e_digits.py')
KD = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')
LFS_POINTER = b'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 1234\n'
# kind -> (torch's exception type, a piece of torch's message, how the file is described)
KINDS = {
    'truncated': (RuntimeError, 'PytorchStreamReader failed reading zip archive', 'a zip archive (torch.save) that '
                                                                                  'is truncated or damaged'),
    'empty': (EOFError, 'torch.load said: EOFError', '0 bytes: an empty file'),
    'text': (pickle.UnpicklingError, 'Unsupported operand', "69 bytes: a text file starting with 'version https://"),
}


def write(tmp_path, kind):
    """A checkpoint file of ``kind``: half of a real one, an empty one, or a Git LFS pointer (text)."""
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': nn.Linear(4, 2).state_dict(), 'meta': {}}, good)
    data = dict(truncated=good.read_bytes()[:good.stat().st_size // 2], empty=b'', text=LFS_POINTER)[kind]
    path = tmp_path / f'{kind}.pth'
    path.write_bytes(data)
    return str(path)


def check(err, path, kind):
    upstream, torch_text, looks = KINDS[kind]
    assert isinstance(err, UnreadableCheckpointError) and isinstance(err, upstream), type(err).__mro__
    msg = str(err)
    assert f"checkpoint file '{path}'" in msg and looks in msg and torch_text in msg, msg
    assert 'teacher_ckpt, load_from, --resume' in msg


@pytest.mark.parametrize('kind', list(KINDS))
def test_the_loader_names_the_file_and_keeps_torchs_type_and_text(tmp_path, kind):
    path = write(tmp_path, kind)
    with pytest.raises(KINDS[kind][0]) as err:
        load_checkpoint_file(path)
    check(err.value, path, kind)


@pytest.mark.parametrize('kind', list(KINDS))
def test_mmengine_load_checkpoint_names_the_file(tmp_path, kind):
    path = write(tmp_path, kind)
    with pytest.raises(KINDS[kind][0]) as err:
        load_checkpoint(nn.Linear(4, 2), path)
    check(err.value, path, kind)


def test_a_truncated_teacher_ckpt_of_an_mmrazor_distiller_names_the_file(tmp_path):
    path = write(tmp_path, 'truncated')
    model = Config.fromfile(KD).model
    model.teacher_ckpt = path
    with pytest.raises(RuntimeError) as err:
        MODELS.build(model)
    check(err.value, path, 'truncated')


@pytest.mark.parametrize('how', ['--resume', 'load_from'])
def test_a_truncated_resume_or_load_from_file_names_the_file(tmp_path, digits_root, how):
    from tools.train import main
    path = write(tmp_path, 'truncated')
    extra = ['--resume', path] if how == '--resume' else ['--cfg-options', f'load_from={path}']
    with pytest.raises(RuntimeError) as err:
        main([STUDENT, '--work-dir', str(tmp_path / 'work'), *extra])
    check(err.value, path, 'truncated')
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()


def _readers():
    """Every reader of a weight file outside MMEngine's loader: AMD's importance scores and the two converters."""
    from mmkd_ext.amd.pruner import load_scores
    from tools.model_converters import repdistiller_to_mmkd, torchvision_to_mmpretrain
    return {'amd_scores': load_scores, 'repdistiller': repdistiller_to_mmkd.load_released,
            'torchvision': torchvision_to_mmpretrain.load_released}


@pytest.mark.parametrize('reader', ['amd_scores', 'repdistiller', 'torchvision'])
@pytest.mark.parametrize('kind', list(KINDS))
def test_other_readers_of_weight_files_name_the_file(tmp_path, reader, kind):
    path = write(tmp_path, kind)
    with pytest.raises(KINDS[kind][0]) as err:
        _readers()[reader](path)
    check(err.value, path, kind)
