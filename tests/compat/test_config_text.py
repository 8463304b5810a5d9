"""The memoised yapf formatting of config texts (mmkd_ext/compat/config_text.py): same text out, yapf run once."""
import os.path as osp

import mmengine.config.config as config_module
import pytest
from mmengine.config import Config
from yapf.yapflib.errors import YapfError
from yapf.yapflib.yapf_api import FormatCode

import mmkd_ext  # noqa: F401  (applies the patch)
from mmkd_ext.compat.config_text import FormatCodeMemo

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'kd', 'resnet8x0.5_1xb32-30e_digits.py')


class CountingFormatCode:
    """yapf's FormatCode, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, text, style_config=None, **kwargs):
        self.calls += 1
        return FormatCode(text, style_config=style_config, **kwargs)


def test_pretty_text_goes_through_the_memo_and_equals_yapfs_own_formatting():
    assert isinstance(config_module.FormatCode, FormatCodeMemo)
    cfg = Config.fromfile(CONFIG)
    memoised = cfg.pretty_text
    config_module.FormatCode, memo = config_module.FormatCode.format_code, config_module.FormatCode
    try:
        plain = Config.fromfile(CONFIG).pretty_text  # MMEngine without the memo
    finally:
        config_module.FormatCode = memo
    assert memoised == plain
    assert Config.fromstring(memoised, '.py').to_dict() == cfg.to_dict()


def test_the_same_text_is_formatted_once_and_a_changed_config_again(tmp_path):
    counting = CountingFormatCode()
    memo, config_module.FormatCode = config_module.FormatCode, FormatCodeMemo(counting)
    try:
        cfg = Config.fromfile(CONFIG)
        first = cfg.pretty_text
        cfg.dump(str(tmp_path / 'dumped.py'))  # what a Runner does besides logging pretty_text
        assert cfg.pretty_text == first == (tmp_path / 'dumped.py').read_text()
        assert counting.calls == 1
        cfg.train_cfg.max_epochs = 7
        assert 'max_epochs=7' in cfg.pretty_text and counting.calls == 2
    finally:
        config_module.FormatCode = memo


def test_the_memo_keeps_only_the_most_recently_used_texts():
    counting = CountingFormatCode()
    memo = FormatCodeMemo(counting, max_texts=2)
    style = dict(based_on_style='pep8')
    for text in ('a=1\n', 'b=2\n', 'a=1\n', 'c=3\n'):  # 'b' is the least recently used when 'c' comes
        memo(text, style_config=style)
    assert counting.calls == 3 and len(memo.results) == 2
    memo('a=1\n', style_config=style)
    assert counting.calls == 3
    memo('b=2\n', style_config=style)
    assert counting.calls == 4
    assert memo('x = (1,\n 2)\n', style_config=style) == FormatCode('x = (1,\n 2)\n', style_config=style)
    assert memo('x=1\n', style_config=dict(based_on_style='google')) == FormatCode(
        'x=1\n', style_config=dict(based_on_style='google'))


def test_a_text_yapf_cannot_format_still_raises_and_is_not_remembered():
    memo = FormatCodeMemo(FormatCode)
    with pytest.raises(YapfError, match='EOF in multi-line statement'):  # MMEngine turns it into a SyntaxError
        memo('x = (\n', style_config=dict(based_on_style='pep8'))
    assert not memo.results
