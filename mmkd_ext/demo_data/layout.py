"""Checks that a dataset root has the expected layout, with an error that says how to make it."""
from __future__ import annotations

import os.path as osp
from typing import Sequence

MAKE_COMMAND = 'python tools/misc/make_demo_data.py'


class DemoDataMissing(FileNotFoundError):
    """A dataset root is missing or not in the expected layout."""


def check_layout(root: str, required: Sequence[str], layout: str, make_command: str = MAKE_COMMAND) -> None:
    """Raise :class:`DemoDataMissing` unless every ``required`` path exists under ``root``.

    Args:
        root: dataset root directory.
        required: paths relative to ``root`` that must exist.
        layout: a short description of the expected layout, for the message.
        make_command: the command that creates the data.
    """
    missing = [p for p in required if not osp.exists(osp.join(root, p))]
    if missing:
        raise DemoDataMissing(
            f'dataset root {root!r} is missing {missing}; expected layout: {layout}. '
            f'Create the demo data with: {make_command}')


def done_marker(root: str) -> str:
    """Path of the file written last by a generator, so a half-written root is regenerated."""
    return osp.join(root, '.complete')
