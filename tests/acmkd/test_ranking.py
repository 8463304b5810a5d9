"""Weakest-student selection (paper Sec. III-C; ties and missing metrics per METHODS.md 3.5 [R])."""
from mmkd_ext.acmkd.ranking import select_weakest

ORDER = ['cnn', 'inn', 'vit']


def test_lowest_accuracy_is_weakest():
    assert select_weakest({'cnn': 70.0, 'inn': 60.0, 'vit': 65.0}, ORDER) == 'inn'


def test_tie_keeps_previous_weakest_when_it_is_tied():
    assert select_weakest({'cnn': 60.0, 'inn': 70.0, 'vit': 60.0}, ORDER, previous='vit') == 'vit'


def test_tie_without_previous_takes_config_order():
    assert select_weakest({'cnn': 70.0, 'inn': 60.0, 'vit': 60.0}, ORDER, previous='cnn') == 'inn'


def test_missing_and_nan_metrics_are_not_ranked():
    assert select_weakest({'cnn': 70.0, 'inn': float('nan'), 'vit': 65.0}, ORDER) == 'vit'
    assert select_weakest({'cnn': 70.0, 'vit': 80.0}, ORDER) == 'cnn'
    assert select_weakest({'cnn': None, 'inn': 50.0, 'vit': 40.0}, ORDER) == 'vit'


def test_fewer_than_two_known_accuracies_keep_previous():
    assert select_weakest({'cnn': 70.0}, ORDER, previous='inn') == 'inn'
    assert select_weakest({}, ORDER) is None
