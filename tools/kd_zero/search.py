"""KD-Zero distiller search (evolution or the Rand-KD baseline) from a search config.

    python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py \
        [--work-dir DIR] [--mode {evolution,random}] [--no-resume] [--cfg-options k=v ...]
    torchrun --nproc_per_node 2 tools/kd_zero/search.py CONFIG --launcher pytorch   # candidates split over ranks

Writes search_state.json (resumable: run the same command again after a kill), candidates.json,
fitness.png, op_frequency.png, best_genome.json and best_distiller_config.py (train it with tools/train.py).

``--cfg-options``: keys of the search config (``search.*``, ``proxy.*``, ...) apply to it; any other key is a key
of the base config the proxies train and goes to ``proxy.cfg_options`` (``model.teacher_ckpt=PATH`` points the
search, and its ``best_distiller_config.py``, at a teacher).
"""
import argparse
import datetime
import os.path as osp
import sys
from typing import Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

# isort: off
import mmkd_ext  # noqa: E402,F401  (compat layer + registration, before mmrazor loads)
import torch.distributed as dist  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from mmkd_ext.checks import check_cfg_options  # noqa: E402
from mmkd_ext.kd_zero.search import search_from_config  # noqa: E402
from mmkd_ext.launch import add_launcher_arg, close_process_group, exit_after_tool, setup_launcher  # noqa: E402
from mmkd_ext.weight_sources import WeightsUnavailable, check_weights_available  # noqa: E402
# isort: on

# [R] gloo timeout of the search's process group: ranks wait in all_gather_object / barrier while another rank
# still trains its proxy run (one child per generation leaves W - 1 ranks waiting a whole proxy run), so
# torch's 30-minute default would abort long proxies (Cityscapes: 2,000 iterations)
DEFAULT_DIST_TIMEOUT_S = 24 * 3600


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='KD-Zero evolutionary distiller search')
    parser.add_argument('config', help='search config (configs/kd_zero/search_*.py)')
    parser.add_argument('--work-dir', help="output folder (default: the config's work_dir if it sets one, else "
                        "work_dirs/<config name>; without --work-dir, --mode random appends _rand_kd)")
    parser.add_argument('--mode', choices=['evolution', 'random'], help='override search.mode (random = Rand-KD)')
    parser.add_argument('--no-resume', action='store_true', help='start over even if a search state exists')
    parser.add_argument('--max-generations', type=int, help='stop after this many generations in this call')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    parser.add_argument('--dist-timeout', type=float, default=DEFAULT_DIST_TIMEOUT_S, metavar='SECONDS',
                        help='how long a rank waits for the others at the end of a generation (all_gather / '
                        'barrier) before the process group gives up; at least the longest proxy run '
                        f'(default {DEFAULT_DIST_TIMEOUT_S} s = 24 h; torch\'s own default is 30 min)')
    add_launcher_arg(parser, '; the candidates of a generation are split over the ranks, one GPU each')
    return parser.parse_args(argv)


def route_cfg_options(cfg: Config, options: Optional[dict]) -> Tuple[dict, dict]:
    """Split ``--cfg-options`` into keys of the search config and keys of the base config.

    Args:
        cfg: the search config.
        options: the ``--cfg-options`` dict.

    Returns:
        ``(search_options, base_options)``: a key whose first part is a variable of the search config applies to
        it; any other (``model.teacher_ckpt``) to the base config, through ``proxy.cfg_options``.
    """
    search, base = {}, {}
    for key, value in (options or {}).items():
        (search if key.split('.')[0] in cfg else base)[key] = value
    return search, base


def apply_cfg_options(cfg: Config, options: Optional[dict]) -> None:
    """Merge ``--cfg-options`` into the search config, base-config keys under ``proxy.cfg_options``."""
    search, base = route_cfg_options(cfg, options)
    check_cfg_options(cfg, search)
    if search:
        cfg.merge_from_dict(search)
    if base:
        cfg.merge_from_dict({f'proxy.cfg_options.{key}': value for key, value in base.items()})


def start_process_group(launcher: str, timeout_s: float) -> None:
    """The search's gloo group (results are gathered as Python objects: gloo on CPU or GPU), ``timeout_s`` long."""
    if launcher != 'none' and not dist.is_initialized():
        dist.init_process_group(backend='gloo', timeout=datetime.timedelta(seconds=timeout_s))


def check_teacher_available(base: Config) -> None:
    """``check_weights_available`` of the base config, its message naming the search's own keys."""
    try:
        check_weights_available(base)
    except WeightsUnavailable as err:
        raise WeightsUnavailable(
            f'{err}\nFor a KD-Zero search, give the teacher with --cfg-options model.teacher_ckpt=PATH on search.py '
            '(forwarded to the proxies and written into best_distiller_config.py), or set '
            'proxy.cfg_options.model.teacher_ckpt in the search config') from err


def resolve_work_dir(args, cfg, mode: str) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``; ``_rand_kd`` appended for
    Rand-KD unless ``--work-dir`` is given (what ``-h`` says)."""
    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if mode == 'random' and not args.work_dir:
        work_dir += '_rand_kd'
    return work_dir


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    apply_cfg_options(cfg, args.cfg_options)
    base = Config.fromfile(cfg.base_config)  # every proxy builds the base config's teacher: its weights must be here
    base.merge_from_dict(cfg.get('proxy', {}).get('cfg_options') or {})
    check_teacher_available(base)
    mode = args.mode or cfg.get('search', {}).get('mode', 'evolution')
    work_dir = resolve_work_dir(args, cfg, mode)
    launch = setup_launcher(args.launcher)  # the proxies of this rank train on cuda:LOCAL_RANK
    start_process_group(args.launcher, args.dist_timeout)
    out = search_from_config(cfg, work_dir, mode=mode, resume=not args.no_resume,
                             max_generations=args.max_generations)
    if dist.is_initialized():
        print(f"rank {dist.get_rank()} trained {out['claimed']} of the candidates of this call and waited "
              f"{out['waited']:.1f} s for the other ranks", flush=True)
    if launch.rank == 0 and out['best'] is not None:
        best = out['best']
        print(f"best distiller: {best['genome']}\nfitness terms: {best['result']['terms']}")
        print(f"loss rejection: {out['savings']}")
        for name, path in out['paths'].items():
            print(f'{name}: {path}')
    close_process_group()
    return out


if __name__ == '__main__':
    main()
    exit_after_tool()  # under torchrun: no interpreter finalization after the group is closed
