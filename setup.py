"""mmkd_ext: five recent knowledge-distillation methods as an MMRazor plugin."""
import os.path as osp

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


setup(
    name='mmkd_ext',
    version=read_version(),
    description='FKD, VRM, KD-Zero, AMD and ACMKD distillation for MMRazor '
    '(classification, detection, segmentation)',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmkd_ext', 'mmkd_ext.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('torch') + read_requirements('mmcv') + read_requirements('runtime'),
    extras_require=dict(tests=read_requirements('tests'), build=read_requirements('build')),
    license='Apache License 2.0',
    zip_safe=False,
)
