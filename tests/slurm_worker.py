"""A test-only srun task (tests/test_launch.py): joins the job through tools' load_config, writes what it sees."""
import argparse
import json
import os
import sys

import torch.distributed as dist

from mmkd_ext.launch import add_common_args, load_config

parser = argparse.ArgumentParser()
parser.add_argument('config')
add_common_args(parser)
cfg = load_config(sys.argv[1], parser.parse_args())
ranks = [None] * dist.get_world_size()
dist.all_gather_object(ranks, (dist.get_rank(), int(os.environ['LOCAL_RANK'])))
with open(os.path.join(os.environ['RESULT_DIR'], f'rank{dist.get_rank()}.json'), 'w') as f:  # one file per task
    json.dump(dict(ranks=ranks, world=dist.get_world_size(), backend=cfg.env_cfg.dist_cfg.backend,
                   device_ids=cfg.model_wrapper_cfg.device_ids, work_dir=cfg.work_dir), f)
dist.destroy_process_group()
