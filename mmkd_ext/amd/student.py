"""What AMD's student is, for ``tools/model_converters/extract_student.py`` (:mod:`mmkd_ext.extraction`).

AMD's student is the product of the whole chain, not of one training run: the pipeline's ``export`` stage writes
it as a physically pruned model (:mod:`.export`). The extractor is therefore given the pipeline's work dir (or its
``amd_state.json``, or any file inside it, e.g. ``final/epoch_4.pth``) and returns that exported student.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import List

from mmengine.config import Config

from ..extraction import Student, load_state, register_students, resolve_model_cfg

STATE_FILE = 'amd_state.json'


def find_state_file(path: str, levels: int = 3) -> str:
    """``amd_state.json`` of the AMD work dir that ``path`` is (or lies in, up to ``levels`` folders down)."""
    here = osp.abspath(path)
    if osp.basename(here) == STATE_FILE and osp.isfile(here):
        return here
    here = here if osp.isdir(here) else osp.dirname(here)
    for _ in range(levels + 1):
        candidate = osp.join(here, STATE_FILE)
        if osp.isfile(candidate):
            return candidate
        here = osp.dirname(here)
    raise FileNotFoundError(f'{path!r} is not in an AMD work dir (no {STATE_FILE} found); give the work dir of '
                            'tools/amd/run.py CONFIG --work-dir DIR')


@register_students('AMDDistill')
def amd_students(cfg: Config, checkpoint: str) -> List[Student]:
    """The exported target-scale student of the AMD chain (weights removed; or the fixed ``amd.final_student``).

    Args:
        cfg: the AMD config.
        checkpoint: the pipeline work dir, its ``amd_state.json`` or a file inside it.

    Returns:
        ``[Student('student', ...)]``.
    """
    state_file = find_state_file(checkpoint)
    with open(state_file) as f:
        exported = json.load(f).get('export', {}).get('student')
    if not exported:
        raise RuntimeError(f'the AMD chain of {osp.dirname(state_file)} has not exported its student yet; run '
                           f'tools/amd/run.py CONFIG --work-dir {osp.dirname(state_file)} to the end')
    state, meta = load_state(exported['checkpoint'])
    if exported.get('config'):  # the target-scale sub-network, as AMDPrunedBackbone(...)
        model = Config.fromfile(exported['config']).model.to_dict()
    else:  # a fixed hand-designed student (supp. Table 7)
        model = resolve_model_cfg(cfg.amd.final_student)
    return [Student('student', model, state, {k: v for k, v in meta.items() if k == 'amd_widths'})]
