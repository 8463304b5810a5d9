"""Every model-zoo checkpoint file named in a config exists in the zoos' metafiles shipped inside the packages."""
import glob
import os.path as osp
import re

import mmdet
import mmengine
import mmpretrain
import mmseg
import pytest
from conftest import ROOT

# OpenMMLab zoo file names end in _<date>[_<time>]-<8 hex>.pth
ZOO_NAME = re.compile(r'[A-Za-z0-9_.\-]+_\d{8}(?:_\d{6})?-[0-9a-f]{8}\.pth')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


def published_checkpoint_names() -> set:
    """File names of the Weights: URLs in mmpretrain/mmdet/mmseg metafiles and of MMEngine's hub tables."""
    names = set()
    for package in (mmpretrain, mmdet, mmseg):
        root = osp.join(osp.dirname(package.__file__), '.mim', 'configs')
        for path in glob.glob(osp.join(root, '**', 'metafile.y*ml'), recursive=True):
            with open(path) as f:
                names.update(osp.basename(u) for u in re.findall(r'https?://\S+\.pth', f.read()))
    for path in glob.glob(osp.join(osp.dirname(mmengine.__file__), 'hub', '*.json')):
        with open(path) as f:
            names.update(osp.basename(u) for u in re.findall(r'https?://[^"\s]+\.pth', f.read()))
    return names


PUBLISHED = published_checkpoint_names()
NAMED = sorted({(osp.relpath(p, ROOT), name) for p in CONFIGS for name in ZOO_NAME.findall(open(p).read())})


def test_the_zoo_tables_were_read():
    assert len(PUBLISHED) > 1000


@pytest.mark.parametrize('config,name', NAMED, ids=[f'{osp.basename(c)}:{n}' for c, n in NAMED])
def test_checkpoint_name_is_published(config, name):
    assert name in PUBLISHED, (f'{config} names {name}, which no metafile of mmpretrain/mmdet/mmseg publishes; '
                               'copy the Weights: name of the model from the package metafile')
