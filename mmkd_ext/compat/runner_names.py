"""Two Runners started within the same second of one process get their own logger, visualizer and log folder.

MMEngine 0.10.7 names a Runner's logger, message hub and visualizer ``<config name>_<timestamp>`` (``%Y%m%d_%H%M%S``)
and fetches them with ``get_instance``, which hands back an *existing* instance of that name. A second Runner of the
same config built within the same second (a config check's train / resume / test runners, a script training two
seeds, a test suite) therefore reused the first Runner's visualizer: its ``vis_data`` went into the first Runner's
folder, or failed with ``FileNotFoundError`` once that folder was gone (``tests/fkd``, seen on a fresh clone). The
timestamp of such a second Runner gets a suffix (``20261206_073054_1``), so its names and its log folder
(``work_dir/<timestamp>``) are its own; the first Runner of a second keeps MMEngine's plain timestamp.
"""
from __future__ import annotations

from typing import List, Optional

_last_second: Optional[str] = None
_repeats = 0


def unique_timestamp(timestamp: str) -> str:
    """``timestamp`` the first time this process sees it, ``<timestamp>_<n>`` the n-th time after that.

    Args:
        timestamp: MMEngine's Runner timestamp (seconds resolution).

    Returns:
        A timestamp no earlier Runner of this process has used.
    """
    global _last_second, _repeats
    if timestamp != _last_second:
        _last_second, _repeats = timestamp, 0
        return timestamp
    _repeats += 1
    return f'{timestamp}_{_repeats}'


def apply() -> List[str]:
    """Wrap ``Runner.setup_env`` (where MMEngine sets the timestamp, before it names anything) once.

    Returns:
        What was replaced, for the compat report.
    """
    from mmengine.runner import Runner

    if getattr(Runner.setup_env, 'mmkd_unique_timestamp', False):
        return []
    original = Runner.setup_env

    def setup_env(self, env_cfg: dict) -> None:
        original(self, env_cfg)
        self._timestamp = unique_timestamp(self._timestamp)

    setup_env.mmkd_unique_timestamp = True
    setup_env.__doc__ = original.__doc__
    Runner.setup_env = setup_env
    return ['mmengine Runner timestamps unique per process (two Runners in one second shared a visualizer)']
