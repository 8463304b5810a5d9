"""tools/misc/gpu_check.sh set-up on a GPU machine without our venv, with stub interpreters (no GPU, no pip)."""
import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

# A stub interpreter: logs every call, has torch but not the OpenMMLab stack, answers the environment question
# with $STUB_KIND (env / system / system-managed) and creates a venv as a copy of itself.
STUB_PY = """\
#!/bin/bash
echo "$0 $*" >> "$STUB_LOG"
case "$*" in
  *EXTERNALLY-MANAGED*) [ "$0" = "${0%/.venv/bin/python}" ] && echo "$STUB_KIND" || echo env ;;
  *"import mmkd_ext, mmdet"*) exit 1 ;;
  "-m venv --system-site-packages "*) mkdir -p "$4/bin" && cp "$0" "$4/bin/python" ;;
esac
exit 0
"""
STUB_SETUP = '#!/bin/bash\necho "setup_env $* PYTHON=$PYTHON MMKD_MMCV_WHEEL=$MMKD_MMCV_WHEEL" >> "$STUB_LOG"\n'


def run_gpu_check(tmp_path, *args, kind='env'):
    """gpu_check.sh copied into a bare tree, PATH = a stub `python3` (no `python`) + the system's tools.

    Returns:
        (completed process, the call log, the tree).
    """
    tree = tmp_path / 'tree'
    (tree / 'tools' / 'misc').mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, 'tools/misc/gpu_check.sh'), tree / 'tools' / 'misc')
    (tree / 'tools' / 'setup_env.sh').write_text(STUB_SETUP)
    (tmp_path / 'bin').mkdir()
    (tmp_path / 'bin' / 'python3').write_text(STUB_PY)
    (tmp_path / 'bin' / 'python3').chmod(0o755)
    log = tmp_path / 'calls.log'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'VIRTUAL_ENV', 'PYTHONPATH')}
    env.update(PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin", STUB_LOG=str(log), STUB_KIND=kind)
    out = subprocess.run(['bash', str(tree / 'tools/misc/gpu_check.sh'), *args], capture_output=True, text=True,
                         env=env, timeout=60)
    return out, log.read_text() if log.exists() else '', tree


@pytest.mark.skipif(os.path.exists('/usr/bin/python') or os.path.exists('/bin/python'), reason='a system `python`')
def test_python3_only_machine_with_a_venv_installs_into_it(tmp_path):
    out, calls, tree = run_gpu_check(tmp_path, '--only', 'fkd')
    py3 = str(tmp_path / 'bin' / 'python3')
    assert out.returncode == 0, out.stdout + out.stderr
    assert f'{py3} tools/misc/gpu_check.py --probe' in calls
    assert f'setup_env --byo PYTHON={py3} MMKD_MMCV_WHEEL=\n' in calls
    assert f'{py3} tools/misc/gpu_check.py --only fkd' in calls
    assert re.search(r'wall time of the whole command: 0 min \d+ s \(set-up and every check included', out.stdout)


@pytest.mark.parametrize('kind', ['system-managed', 'system'])
def test_system_python_gets_a_venv_on_top_and_a_prebuilt_mmcv_wheel(tmp_path, kind):
    wheel = tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.write_text('')
    out, calls, tree = run_gpu_check(tmp_path, '--mmcv-wheel', str(wheel), '--no-amp', kind=kind)
    venv_py = f'{tree}/.venv/bin/python'
    assert out.returncode == 0, out.stdout + out.stderr
    assert f'-m venv --system-site-packages {tree}/.venv' in calls
    assert f'setup_env --byo PYTHON={venv_py} MMKD_MMCV_WHEEL={wheel}\n' in calls  # never the system python
    assert f'{venv_py} tools/misc/gpu_check.py --no-amp\n' in calls  # --mmcv-wheel is gpu_check.sh's own


def test_missing_wheel_is_refused_before_anything_runs(tmp_path):
    out, calls, _ = run_gpu_check(tmp_path, '--mmcv-wheel', str(tmp_path / 'nope.whl'))
    assert out.returncode == 2 and 'no file' in out.stderr and calls == ''
