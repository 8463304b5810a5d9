"""Checks that a dataset root has the expected layout, with an error that says how to make it."""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import os.path as osp
from typing import Callable, Iterator, Sequence

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

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


@contextlib.contextmanager
def root_lock(root: str) -> Iterator[None]:
    """Hold an exclusive lock on ``root`` (the file ``<root>.lock`` beside it) while the block runs.

    Several processes may generate the same data at once (parallel test workers, jobs started side by side); the lock
    makes the second wait for the first and then find its completion marker, instead of rewriting files the first is
    reading. POSIX ``flock``; where it does not exist the block runs unlocked.
    """
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    with open(osp.abspath(root).rstrip(os.sep) + '.lock', 'a') as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def generated_once(maker: Callable[..., str]) -> Callable[..., str]:
    """Decorate a generator ``maker(root, ...)`` so that it runs under :func:`root_lock` of its ``root``."""
    signature = inspect.signature(maker)

    @functools.wraps(maker)
    def locked(*args, **kwargs) -> str:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with root_lock(bound.arguments['root']):
            return maker(*args, **kwargs)

    return locked
