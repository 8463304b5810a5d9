"""mmkd_ext: five recent knowledge-distillation methods as an MMRazor plugin."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmkd_ext', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name: str) -> list:
    """Requirement lines of requirements/<name>.txt, comments dropped."""
    lines = []
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def add_mim_extension() -> None:
    """Ship ``configs/`` inside the package as ``mmkd_ext/.mim/configs`` (the OpenMMLab layout behind ``mmkd_ext::``
    config paths), as mmdet's and mmpretrain's ``setup.py`` do: a symlink for editable installs (``develop``,
    ``editable_wheel``), a copy when a wheel or sdist is built; other commands leave it alone."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return
    src = osp.join(HERE, 'configs')
    mim = osp.join(HERE, 'mmkd_ext', '.mim')
    target = osp.join(mim, 'configs')
    os.makedirs(mim, exist_ok=True)
    if osp.islink(target) or osp.isfile(target):
        os.remove(target)
    elif osp.isdir(target):
        shutil.rmtree(target)
    if mode == 'symlink':
        os.symlink(osp.relpath(src, mim), target)
    else:
        shutil.copytree(src, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


add_mim_extension()
setup(
    name='mmkd_ext',
    version=read_version(),
    description='FKD, VRM, KD-Zero, AMD and ACMKD distillation for MMRazor '
    '(classification, detection, segmentation)',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkd_ext', 'mmkd_ext.*']),
    include_package_data=True,  # mmkd_ext/.mim/configs (MANIFEST.in)
    python_requires='>=3.9',
    install_requires=read_requirements('torch') + read_requirements('mmcv') + read_requirements('runtime'),
    extras_require=dict(tests=read_requirements('tests'), build=read_requirements('build'),
                        deploy=read_requirements('deploy')),
    license='Apache License 2.0',
    zip_safe=False,
)
