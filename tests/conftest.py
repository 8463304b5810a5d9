"""Shared fixtures: the repository root, built-in demo data, and config helpers."""
import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # `from conftest import ...`, test-only modules
os.chdir(ROOT)  # configs use data/demo/... relative to the repository root

import mmkd_ext  # noqa: E402,F401

if os.environ.get('PYTEST_XDIST_WORKER'):  # `make test` runs the suite in two workers on two cores
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def digits_root():
    from mmkd_ext.demo_data import make_digits
    return make_digits(osp.join(ROOT, 'data/demo/digits'))


@pytest.fixture(scope='session')
def shapes_root():
    from mmkd_ext.demo_data import make_shapes_coco
    return make_shapes_coco(osp.join(ROOT, 'data/demo/shapes'))


@pytest.fixture(scope='session')
def cityscapes_root():
    from mmkd_ext.demo_data import make_cityscapes_scenes
    return make_cityscapes_scenes(osp.join(ROOT, 'data/demo/cityscapes'))


def _restore_default_scopes():
    """Yield, then put MMEngine's ``DefaultScope`` instances back as they were before (the current default scope is
    the newest instance, and every Runner and ``init_default_scope`` makes one)."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


@pytest.fixture(autouse=True)
def no_default_scope_left_behind():
    """Without it, a test's scope-less build depended on which test its worker had run before (a detection test
    left 'mmdet', and MMRazor's ``SingleTeacherDistill`` was then not found)."""
    yield from _restore_default_scopes()


@pytest.fixture(scope='module', autouse=True)
def no_default_scope_left_behind_by_a_module():
    """The same for module fixtures: they are set up before the function fixture above takes its snapshot, so a scope
    they made (``init_default_scope('mmseg')`` in tests/kd_zero/test_seg_search.py, a module's shared Runner) stayed
    for every later module (``KDZeroLoss is not in the mmseg::model registry`` in ``pytest tests/kd_zero``). Autouse
    fixtures of a scope are set up before its other fixtures, so this snapshot precedes them."""
    yield from _restore_default_scopes()


@pytest.fixture
def single_torch_thread():
    """One intra-op thread: on the shared 2-core machine two spinning threads make small models ~10-30x slower;
    restored afterwards."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config_path(*parts):
    return osp.join(ROOT, 'configs', *parts)


# ------------------------------------------------------------------------------- the order workers get the tests in
DURATIONS_FILE = osp.join(ROOT, 'tests', 'durations.json')
LONG_TEST_SECONDS = 5.0


def pytest_addoption(parser):
    parser.addoption('--store-durations', action='store_true', default=False,
                     help="write each test's call seconds to tests/durations.json, from which the tests of "
                          f'{LONG_TEST_SECONDS:g} s or more run first')


def known_call_seconds() -> dict:
    """Seconds of each test's call phase, by node id, as recorded with ``--store-durations`` ({} without the file)."""
    import json
    if not osp.isfile(DURATIONS_FILE):
        return {}
    with open(DURATIONS_FILE) as f:
        return json.load(f)


def longest_first(items: list, seconds: dict, threshold: float = LONG_TEST_SECONDS) -> list:
    """The tests known to take ``threshold`` seconds or more, longest first, then the others in collection order.

    ``make test`` hands tests to two pytest-xdist workers in this order: a 2-minute config check left for the end
    keeps one core busy while the other idles. Only the call phase counts, and short tests keep their order, so a
    module's fixtures are still set up once per worker in the common case.
    """
    long = sorted((item for item in items if seconds.get(item.nodeid, 0.0) >= threshold),
                  key=lambda item: -seconds[item.nodeid])
    return long + [item for item in items if seconds.get(item.nodeid, 0.0) < threshold]


def pytest_collection_modifyitems(config, items):
    items[:] = longest_first(items, known_call_seconds())


class CallSecondsRecorder:
    """Records each passed test's call seconds (on the xdist controller: every worker's reports come through it) and
    writes those of a second or more to :data:`DURATIONS_FILE` at the end of the run; entries of tests this run did
    not pass are kept."""

    def __init__(self):
        self.seconds = {}

    def pytest_runtest_logreport(self, report):
        if report.when == 'call' and report.passed:
            self.seconds[report.nodeid] = round(report.duration, 1)

    def pytest_sessionfinish(self, session):
        if self.seconds and not hasattr(session.config, 'workerinput'):
            import json
            seconds = {k: v for k, v in known_call_seconds().items() if k not in self.seconds}
            seconds.update((k, v) for k, v in self.seconds.items() if v >= 1.0)
            with open(DURATIONS_FILE, 'w') as f:
                json.dump(dict(sorted(seconds.items())), f, indent=0)
                f.write('\n')


def pytest_configure(config):
    if config.getoption('--store-durations'):
        config.pluginmanager.register(CallSecondsRecorder(), 'mmkd_ext_call_seconds')


# ------------------------------------------------------------------ the fake-CUDA device check's coverage (issue 23)
def pytest_terminal_summary(terminalreporter):
    """After the config checks (tests/test_config_check.py), print which configs the fake-CUDA device check covered,
    in full or partially and why. Each check passes its records as a user property, which xdist workers send to the
    controller with the test's report."""
    import json

    from mmkd_ext.device_check import coverage_report
    reports = [r for key in ('passed', 'failed') for r in terminalreporter.stats.get(key, [])
               if getattr(r, 'when', None) == 'call' and 'test_config_runs_end_to_end_on_standin_data' in r.nodeid]
    if not reports:
        return
    records = [record for r in reports for name, value in r.user_properties if name == 'fake_cuda_records'
               for record in json.loads(value)]
    terminalreporter.section('fake-CUDA device check')
    for line in coverage_report(records, total=len(reports)):
        terminalreporter.write_line(line)
