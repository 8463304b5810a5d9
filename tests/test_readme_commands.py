"""The README's command lines work as written after set-up: its ``bash`` blocks activate the venv before the tools,
every ``python tools/...`` line parses with that tool's own argument parser (placeholders filled in), and
``bash tools/dist_train.sh`` trains with the set-up venv without activation or ``PYTHON``."""
import argparse
import importlib.util
import os
import os.path as osp
import re
import shlex
import subprocess
from typing import List

import pytest
from gloo_ranks import free_port

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/kd/resnet8x0.5_1xb32-30e_digits.py'
PLACEHOLDERS = {'CONFIG': CONFIG, 'CHECKPOINT': 'work_dirs/x/epoch_1.pth', 'CKPT': 'work_dirs/x/epoch_1.pth',
                'DIR': 'work_dirs/x', 'NUM_PROCS': '1', 'k=v': 'train_cfg.max_epochs=1'}


def readme_bash_lines(path: str = osp.join(ROOT, 'README.md')) -> List[str]:
    """Command lines of the README's ```bash blocks, comments removed, in order."""
    with open(path) as f:
        blocks = re.findall(r'```bash\n(.*?)```', f.read(), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #', 1)[0].strip()
            if line and not line.startswith('#'):
                lines.append(line)
    return lines


def fill_template(line: str) -> List[str]:
    """argv of a documented command: optional ``[...]`` parts kept, placeholders replaced, ``...`` dropped."""
    words = shlex.split(line.replace('[', ' ').replace(']', ' '))
    return [PLACEHOLDERS.get(w, w) for w in words if w != '...']


class Parsed(Exception):
    """Raised instead of running the tool once its arguments parsed."""


def parse_as_tool(script: str, argv: List[str], monkeypatch) -> argparse.Namespace:
    """Run ``script``'s ``main(argv)`` up to its ``parse_args`` and return what it parsed (nothing else runs)."""
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    spec = importlib.util.spec_from_file_location(f'readme_{osp.basename(script)[:-3]}', osp.join(ROOT, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_and_stop)
    with pytest.raises(Parsed) as parsed:
        module.main(argv)
    return parsed.value.args[0]


def test_readme_activates_the_venv_before_the_first_tool_command():
    lines = readme_bash_lines()
    first_tool = next(i for i, line in enumerate(lines) if re.match(r'(python|bash) tools/', line))
    assert 'source .venv/bin/activate' in lines[:first_tool]


def test_every_python_tool_line_of_the_readme_parses_as_written(monkeypatch):
    checked = []
    for line in readme_bash_lines():
        if not line.startswith('python tools/'):
            continue
        _, script, *argv = fill_template(line)
        assert osp.isfile(osp.join(ROOT, script)), f'README names {script}, which does not exist'
        args = parse_as_tool(script, argv, monkeypatch)
        config = getattr(args, 'config', None)
        if config is not None:  # the documented configs exist
            assert osp.isfile(osp.join(ROOT, config)), f'README line {line!r}: no config {config}'
        checked.append(script)
    assert {'tools/train.py', 'tools/test.py', 'tools/model_converters/extract_student.py'} <= set(checked)


def test_dist_train_sh_trains_with_the_set_up_venv_without_activation(tmp_path, digits_root):
    line = next(line for line in readme_bash_lines() if line.startswith('bash tools/dist_train.sh'))
    argv = fill_template(line.split('[', 1)[0])  # bash tools/dist_train.sh CONFIG NUM_PROCS
    argv += ['--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
             'train_dataloader.dataset.indices=32', 'val_dataloader.dataset.indices=20', 'log_level=WARNING']
    # a shell of a new user: no venv on PATH, no PYTHON, no PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'PYTHONPATH', 'VIRTUAL_ENV', 'CONDA_PREFIX')}
    env.update(PATH='/usr/local/bin:/usr/bin:/bin', OMP_NUM_THREADS='1', PORT=str(free_port()))
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert osp.isfile(tmp_path / 'epoch_1.pth')
