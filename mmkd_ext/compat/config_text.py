"""MMEngine formats a config's text with yapf once per use; the same text is formatted once per process here.

``Config.pretty_text`` builds the config's Python text and runs yapf's ``FormatCode`` over it every time it is read.
yapf searches line-breaking solutions and is slow: about 0.7 s for a CIFAR-100 distillation config, several seconds
for a COCO Cascade R-CNN one (2-core CPU). A Runner reads ``pretty_text`` three times when it starts (the log, the
dumped ``<work_dir>/<config>.py`` and the visualizer's config record), a resumed run or ``tools/test.py`` three more,
and tools that start many runners (a KD-Zero search runs a proxy training per candidate, the AMD pipeline a run per
stage, ``tools/misc/check_config.py`` a train, resume and test run) format the same text again and again: 15 of the
19 s of a CIFAR-100 config check were yapf, with 21 calls on 5 distinct texts.

``FormatCode`` is a pure function of its arguments, so its result is memoised, keyed by the unformatted text and the
style: the formatted text (and therefore every dumped config and log) is exactly what MMEngine writes without this
module. The memo holds the :data:`MAX_TEXTS` most recently used texts (a config text is tens of KB).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, List, Tuple

MAX_TEXTS = 64


class FormatCodeMemo:
    """yapf's ``FormatCode`` with its results kept for the most recently formatted texts.

    Args:
        format_code: yapf's ``FormatCode(unformatted_source, style_config=None, **kwargs)``.
        max_texts: How many distinct (text, style, options) results are kept (least recently used dropped first).
    """

    def __init__(self, format_code: Callable[..., Tuple[str, bool]], max_texts: int = MAX_TEXTS):
        self.format_code = format_code
        self.max_texts = max_texts
        self.results: OrderedDict = OrderedDict()
        self.formatted = 0  # calls that ran yapf

    @staticmethod
    def key(unformatted_source: str, style_config: Any, kwargs: dict) -> tuple:
        style = tuple(sorted(style_config.items())) if isinstance(style_config, dict) else style_config
        return unformatted_source, repr(style), tuple(sorted(kwargs.items()))

    def __call__(self, unformatted_source: str, style_config: Any = None, **kwargs) -> Tuple[str, bool]:
        key = self.key(unformatted_source, style_config, kwargs)
        if key in self.results:
            self.results.move_to_end(key)
            return self.results[key]
        result = self.format_code(unformatted_source, style_config=style_config, **kwargs)  # raises as yapf does
        self.formatted += 1
        self.results[key] = result
        if len(self.results) > self.max_texts:
            self.results.popitem(last=False)
        return result


def apply() -> List[str]:
    """Route ``mmengine.config.config.FormatCode`` (what ``Config.pretty_text`` calls) through a memo (idempotent)."""
    import mmengine.config.config as config_module

    if isinstance(config_module.FormatCode, FormatCodeMemo):
        return []
    config_module.FormatCode = FormatCodeMemo(config_module.FormatCode)
    return ['mmengine Config.pretty_text: yapf formatting memoised by text (each distinct config formatted once)']
