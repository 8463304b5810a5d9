"""KD-Zero distiller search (evolution or the Rand-KD baseline) from a search config.

    python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py \
        [--work-dir DIR] [--mode {evolution,random}] [--no-resume] [--cfg-options k=v ...]
    torchrun --nproc_per_node 2 tools/kd_zero/search.py CONFIG --launcher pytorch   # candidates split over ranks

Writes search_state.json (resumable: run the same command again after a kill), candidates.json,
fitness.png, op_frequency.png, best_genome.json and best_distiller_config.py (train it with tools/train.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

# isort: off
import mmkd_ext  # noqa: E402,F401  (compat layer + registration, before mmrazor loads)
import torch.distributed as dist  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from mmkd_ext.checks import check_cfg_options  # noqa: E402
from mmkd_ext.kd_zero.search import search_from_config  # noqa: E402
from mmkd_ext.launch import add_launcher_arg, close_process_group, exit_after_tool, setup_launcher  # noqa: E402
from mmkd_ext.weight_sources import check_weights_available  # noqa: E402
# isort: on


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='KD-Zero evolutionary distiller search')
    parser.add_argument('config', help='search config (configs/kd_zero/search_*.py)')
    parser.add_argument('--work-dir', help="output folder (default: the config's work_dir if it sets one, else "
                        "work_dirs/<config name>; without --work-dir, --mode random appends _rand_kd)")
    parser.add_argument('--mode', choices=['evolution', 'random'], help='override search.mode (random = Rand-KD)')
    parser.add_argument('--no-resume', action='store_true', help='start over even if a search state exists')
    parser.add_argument('--max-generations', type=int, help='stop after this many generations in this call')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    add_launcher_arg(parser, '; the candidates of a generation are split over the ranks, one GPU each')
    return parser.parse_args(argv)


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
    check_cfg_options(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    base = Config.fromfile(cfg.base_config)  # every proxy builds the base config's teacher: its weights must be here
    base.merge_from_dict(cfg.get('proxy', {}).get('cfg_options') or {})
    check_weights_available(base)
    mode = args.mode or cfg.get('search', {}).get('mode', 'evolution')
    work_dir = resolve_work_dir(args, cfg, mode)
    launch = setup_launcher(args.launcher)  # the proxies of this rank train on cuda:LOCAL_RANK
    if args.launcher != 'none' and not dist.is_initialized():
        dist.init_process_group(backend='gloo')  # results are gathered as Python objects: gloo on CPU or GPU
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
