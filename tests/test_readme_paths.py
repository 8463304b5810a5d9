"""Every config or file a README names exists (issue 18, item 7: configs/kd/README.md named a missing config)."""
import glob
import os.path as osp
import re

import pytest

from mmkd_ext.mmrazor_zoo import ZOO_ROOT

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
READMES = ['README.md'] + sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/*/README.md')))
# files the tools write (named in the READMEs as outputs, not shipped)
GENERATED = ('best_distiller_config.py', 'student.py', 'ta.py')
PY_FILE = re.compile(r'[\w./:*<>-]+\.py\b')
ELIDED = re.compile(r'`([\w.-]+_)\.\.\.`')  # `resnet20_...`: some config starts with it


def shipped_py_files():
    names = {'setup.py'}
    for folder in ('configs', 'mmkd_ext', 'tools', 'benchmarks', 'tests'):
        names.update(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, folder, '**', '*.py'), recursive=True))
    return names


def missing_references(readme: str, shipped: set) -> list:
    text = open(osp.join(ROOT, readme)).read()
    basenames = {osp.basename(p) for p in shipped}
    config_names = {osp.basename(p) for p in shipped if p.startswith('configs/')}
    missing = []
    for ref in PY_FILE.findall(text):
        if '::' in ref or '<' in ref or ref.startswith(('work_dirs/', 'WORK_DIR/')) or ref.endswith(GENERATED):
            continue  # upstream (mmpretrain::), placeholders, outputs
        if '*' in ref:
            found = glob.glob(osp.join(ROOT, ref)) or glob.glob(osp.join(ROOT, 'configs', '*', ref))
        else:
            found = (ref in shipped or osp.normpath(osp.join(osp.dirname(readme), ref)) in shipped
                     or ('/' not in ref and ref in basenames)
                     or osp.isfile(osp.join(ZOO_ROOT, ref.replace('ZOO/', ''))))  # MMRazor's shipped configs
        if not found:
            missing.append(ref)
    missing += [f'{prefix}...' for prefix in ELIDED.findall(text)
                if not any(name.startswith(prefix) for name in config_names)]
    return missing


@pytest.mark.parametrize('readme', READMES)
def test_every_file_a_readme_names_exists(readme):
    assert missing_references(readme, shipped_py_files()) == []
