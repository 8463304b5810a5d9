"""Stand-in datasets are read by the real dataset classes, in the real layouts, with the real label spaces."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmkd_ext.demo_data.standin import (
    COCO_CATEGORY_IDS,
    make_cifar100_standin,
    make_cityscapes_standin,
    make_coco_standin,
    make_imagenet_standin,
    register_standin_datasets,
)


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    return tmp_path_factory.mktemp('standin')


def test_cifar100_pickles_read_by_mmpretrain_and_the_real_class_refuses_them(base):
    from mmpretrain.datasets import CIFAR100
    root = make_cifar100_standin(str(base / 'cifar100'))
    register_standin_datasets()
    from mmpretrain.registry import DATASETS
    train = DATASETS.build(dict(type='CIFAR100StandIn', _scope_='mmpretrain', data_root=root, split='train',
                                 pipeline=[]))
    test = DATASETS.build(dict(type='CIFAR100StandIn', _scope_='mmpretrain', data_root=root, split='test',
                                pipeline=[]))
    assert (len(train), len(test)) == (16, 8) and len(train.metainfo['classes']) == 100
    assert train[0]['img'].shape == (32, 32, 3) and 0 <= train[0]['gt_label'] < 100
    with pytest.raises(RuntimeError):  # the md5 sums of the published archive: why the check swaps the class
        CIFAR100(data_root=root, split='train', pipeline=[], download=False)


def test_imagenet_tree_read_by_mmpretrain_imagenet(base):
    from mmpretrain.datasets import ImageNet
    root = make_imagenet_standin(str(base / 'imagenet'))
    train = ImageNet(data_root=root, split='train', pipeline=[dict(type='LoadImageFromFile')])
    val = ImageNet(data_root=root, split='val', pipeline=[])
    assert (len(train), len(val)) == (16, 8) and len(train.metainfo['classes']) == 1000
    assert train[0]['img'].shape == (375, 500, 3)
    assert len({train.get_data_info(i)['gt_label'] for i in range(16)}) == 4  # 4 classes x 4 images


def test_coco_read_by_mmdet_with_the_80_categories_and_masks(base):
    init_default_scope('mmdet')
    from mmdet.datasets import CocoDataset
    root = make_coco_standin(str(base / 'coco'))
    data = CocoDataset(data_root=root, ann_file='annotations/instances_train2017.json',
                       data_prefix=dict(img='train2017/'), pipeline=[], filter_cfg=None)
    assert len(data) == 8 and len(COCO_CATEGORY_IDS) == 80 and data.cat_ids == list(COCO_CATEGORY_IDS)
    instances = [inst for i in range(len(data)) for inst in data.get_data_info(i)['instances']]
    assert instances and all('mask' in inst and 0 <= inst['bbox_label'] < 80 for inst in instances)


def test_cityscapes_read_by_mmseg_with_all_19_train_ids(base):
    init_default_scope('mmseg')
    from mmseg.datasets import CityscapesDataset
    root = make_cityscapes_standin(str(base / 'cityscapes'))
    data = CityscapesDataset(data_root=root, data_prefix=dict(img_path='leftImg8bit/train',
                                                              seg_map_path='gtFine/train'),
                             pipeline=[dict(type='LoadAnnotations')])
    assert len(data) == 8
    labels = np.unique(data[0]['gt_seg_map'])
    assert set(range(19)) <= set(labels.tolist()) and 255 in labels


def _generate_cifar100(root, started):
    started.set()
    make_cifar100_standin(root)


def test_a_second_process_waits_for_the_one_generating_the_same_root(tmp_path):
    """Parallel test workers (``make test`` runs the config checks in two) and jobs started side by side generate the
    same stand-in: the second waits on ``<root>.lock`` instead of rewriting files the first is reading."""
    import multiprocessing as mp
    import os.path as osp
    import time

    from mmkd_ext.demo_data.layout import done_marker, root_lock
    root = str(tmp_path / 'cifar100')
    ctx = mp.get_context('fork')  # safe after torch's OpenMP threads: the child runs numpy and PIL only, no torch op
    started = ctx.Event()
    with root_lock(root):  # this process is "generating"
        child = ctx.Process(target=_generate_cifar100, args=(root, started))
        child.start()
        assert started.wait(60)
        deadline = time.time() + 3  # unlocked, the child writes the 24 images in well under a second
        while time.time() < deadline:
            assert not osp.exists(root), 'the second generator wrote while the first held the lock'
            time.sleep(0.05)
    child.join(60)
    assert child.exitcode == 0 and osp.isfile(done_marker(root))
