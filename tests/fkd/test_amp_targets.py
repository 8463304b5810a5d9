"""FKD under ``--amp``: the stored soft labels stay fp32; the 16-bit logits are cast up for the fp32 loss."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmkd_ext.fkd import algorithm as fkd_algorithm
from mmkd_ext.fkd.algorithm import FKDDistill


class _Linear(BaseModel):
    """A 4 -> 3 linear classifier whose ``mode='tensor'`` output is the logits."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.fc(inputs)


def _autocast_dtype():
    for dtype in (torch.bfloat16, torch.float16):
        try:
            with torch.autocast('cpu', dtype=dtype):
                if torch.nn.functional.linear(torch.ones(1, 2), torch.ones(2, 2)).dtype == dtype:
                    return dtype
        except RuntimeError:
            continue
    pytest.skip('no 16-bit CPU autocast in this torch build')


def test_stored_labels_stay_fp32_under_autocast(monkeypatch):
    torch.manual_seed(0)
    model = FKDDistill(_Linear())
    # 1/3 and 0.1 are not representable in 16 bits: bf16 rounds 1/3 to 0.333984375 (fp16: 0.33325195)
    targets = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]], dtype=torch.float32)
    samples = [BaseDataElement(gt_score=t.clone()) for t in targets]
    seen = {}
    original_logits, original_loss = model.student_logits, fkd_algorithm.fkd_loss

    def record_logits(*args, **kwargs):
        seen['logits'] = original_logits(*args, **kwargs)
        return seen['logits']

    def record_loss(logits, soft_labels, temperature=1.0):
        seen['targets'] = soft_labels
        return original_loss(logits, soft_labels, temperature)

    monkeypatch.setattr(model, 'student_logits', record_logits)
    monkeypatch.setattr(fkd_algorithm, 'fkd_loss', record_loss)
    dtype = _autocast_dtype()
    with torch.autocast('cpu', dtype=dtype):
        loss = model.loss(torch.randn(2, 4), samples)['loss_fkd']
    assert seen['logits'].dtype == dtype  # the student really ran in 16 bits
    assert seen['targets'].dtype == torch.float32 and torch.equal(seen['targets'], targets)  # not rounded
    # hand-computed reference: -sum_c q_c log softmax(z)_c with fp32 q and the 16-bit logits cast up
    z = seen['logits'].detach().float()
    expected = -(targets * (z - z.logsumexp(dim=1, keepdim=True))).sum(dim=1).mean()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-7)
    rounded = -(targets.to(dtype).float() * (z - z.logsumexp(dim=1, keepdim=True))).sum(dim=1).mean()
    assert abs(rounded.item() - expected.item()) > 1e-5  # the rounded targets would give another loss
