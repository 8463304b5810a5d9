"""The code base stays ruff clean (pyproject.toml holds the rules)."""
import subprocess
import sys

from conftest import ROOT


def test_ruff_reports_nothing():
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'concise', 'mmkd_ext', 'tools',
                           'tests', 'configs', 'benchmarks'], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
