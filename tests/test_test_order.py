"""`make test` hands the longest known tests to its two workers first (tests/conftest.py, tests/durations.json)."""
from types import SimpleNamespace

from conftest import DURATIONS_FILE, known_call_seconds, longest_first


def items(*nodeids):
    return [SimpleNamespace(nodeid=n) for n in nodeids]


def test_long_tests_go_first_longest_first_and_the_rest_keep_their_order():
    seconds = {'a::x': 1.0, 'b::check[big]': 117.0, 'c::y': 4.9, 'd::check[small]': 9.0, 'e::dist': 35.0}
    ordered = longest_first(items('a::x', 'b::check[big]', 'c::y', 'd::check[small]', 'e::dist', 'f::new'), seconds)
    assert [i.nodeid for i in ordered] == ['b::check[big]', 'e::dist', 'd::check[small]', 'a::x', 'c::y', 'f::new']


def test_the_shipped_durations_name_the_config_checks_among_the_long_tests():
    seconds = known_call_seconds()
    assert DURATIONS_FILE.endswith('tests/durations.json') and seconds
    longest = max(seconds, key=seconds.get)
    assert longest.startswith('tests/test_config_check.py::test_config_runs_end_to_end_on_standin_data['), longest
