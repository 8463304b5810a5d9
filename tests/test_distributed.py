"""tools/dist_train.sh trains the classification KD config with 2 CPU processes (gloo, real DDP)."""
import os
import os.path as osp
import subprocess
import sys

from conftest import ROOT, config_path
from gloo_ranks import free_port

CLS_KD = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')


def test_two_process_kd_training_saves_a_checkpoint_and_ranks_see_disjoint_data(tmp_path, digits_root):
    record = tmp_path / 'seen'
    config = tmp_path / 'kd_dist.py'
    config.write_text(
        f"_base_ = [{CLS_KD!r}]\n"
        "custom_imports = dict(imports=['mmkd_ext', 'dist_hook'], allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='RecordImagePathsHook', out_dir={str(record)!r})]\n"
        "model = dict(teacher_ckpt=None)\n"
        "train_cfg = dict(max_epochs=1, val_interval=1)\n"
        "train_dataloader = dict(batch_size=50)\n")
    env = {**os.environ, 'PYTHONPATH': osp.join(ROOT, 'tests'), 'PYTHON': sys.executable, 'PORT': str(free_port()),
           'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(tmp_path / 'work')],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')
    seen = [set((record / f'rank{r}.txt').read_text().split()) for r in (0, 1)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 300  # together the two ranks cover the 300 training images once
    assert 'Distributed training is not used' not in proc.stdout + proc.stderr
