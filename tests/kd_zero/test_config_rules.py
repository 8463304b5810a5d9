"""A child config's kd_zero_genome drives the losses; COCO refuses genomes that cannot act on FPN features."""
import argparse

import pytest
from conftest import config_path

from mmkd_ext.kd_zero.genome import GenomeError
from mmkd_ext.launch import load_config

FASTER = config_path('kd_zero', 'kd_zero_fpn_cascade-mask-rcnn-x101-64x4d_faster-rcnn-r50_8xb2-2x_coco.py')
PSPNET = config_path('kd_zero', 'kd_zero_deeplabv3-r101_pspnet-r18_4xb2-40k_cityscapes-512x1024.py')
GENOME = dict(knowledge='feature', t1='no', t2='no', t3='softmax_HW', distance='kl', weight=0.05, calibration='no',
              tau=4.0)


def load(path, tmp_path, **genome):
    child = tmp_path / 'child.py'
    child.write_text(f'_base_ = [{path!r}]\nkd_zero_genome = {dict(GENOME, **genome)!r}\n')
    args = argparse.Namespace(cfg_options=None, work_dir=str(tmp_path), launcher='none', local_rank=0)
    return load_config(str(child), args)


@pytest.mark.parametrize('path', [FASTER, PSPNET])
def test_a_child_kd_zero_genome_becomes_the_genome_of_every_kd_zero_loss(path, tmp_path):
    cfg = load(path, tmp_path, weight=0.125, t3='softmax_C')
    losses = cfg.model.distiller.distill_losses
    assert losses and all(loss.genome['weight'] == 0.125 and loss.genome['t3'] == 'softmax_C'
                          for loss in losses.values())


def test_cfg_options_kd_zero_genome_reaches_the_losses(tmp_path):
    args = argparse.Namespace(cfg_options=dict(kd_zero_genome=dict(GENOME, weight=0.5)), work_dir=str(tmp_path),
                              launcher='none', local_rank=0)
    cfg = load_config(PSPNET, args)
    assert cfg.model.distiller.distill_losses.loss_kdzero.genome['weight'] == 0.5


@pytest.mark.parametrize('gene,value,words', [('calibration', 'conf', "calibration='no'"),
                                              ('knowledge', 'logits', "knowledge='feature'")])
def test_coco_refuses_genomes_that_need_image_logits_before_training(gene, value, words, tmp_path):
    with pytest.raises(GenomeError, match=words) as err:
        load(FASTER, tmp_path, **{gene: value})
    assert isinstance(err.value, ValueError)


def test_segmentation_keeps_calibrated_genomes(tmp_path):
    cfg = load(PSPNET, tmp_path, calibration='conf')
    assert cfg.model.distiller.distill_losses.loss_kdzero.genome['calibration'] == 'conf'
