"""Task dispatch of the KD-Zero proxy fitness: which task a distillation config trains, and the fitness terms
of a proxy-trained ``SingleTeacherDistill`` on a held-out split for that task.

* classification (mmpretrain ``ImageClassifier``): images are the samples (METHODS.md 2.4);
* segmentation (mmseg ``EncoderDecoder``): pixels are the samples for CE, pixel accuracy and the sharpness gap
  ([R] METHODS.md 2.4 + 2.8), images (pooled features) or a fixed random subsample of pixels for the CKA;
* detection: not searchable. The paper (Sec. 4.3) applies the distiller searched on ImageNet to COCO, so a
  detection search config fails with :data:`DETECTION_MESSAGE`.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .fitness import fitness_terms, pixel_sums, segmentation_fitness_terms

SEARCHABLE_TASKS = ('classification', 'segmentation')
TASKS = SEARCHABLE_TASKS + ('detection', )
IMAGENET_SEARCH_CONFIG = 'configs/kd_zero/search_kd_zero_resnet34_resnet18_in1k-subset.py'
DETECTION_MESSAGE = (
    'KD-Zero does not search distillers on detection: the paper (Sec. 4.3) distils COCO detectors with the distiller '
    f'searched on ImageNet. Run `python tools/kd_zero/search.py {IMAGENET_SEARCH_CONFIG}` and put its '
    'best_genome.json into kd_zero_genome of the COCO config (configs/kd_zero/kd_zero_fpn_*_coco.py).')
_SCOPE_TASKS = {'mmpretrain': 'classification', 'mmcls': 'classification', 'mmseg': 'segmentation',
                'mmdet': 'detection'}
_TYPE_TASKS = {'ImageClassifier': 'classification', 'EncoderDecoder': 'segmentation',
               'CascadeEncoderDecoder': 'segmentation'}
SEG_CKA_FEATURES = ('head_input', 'classifier_input')


def infer_task(cfg, task: Optional[str] = None) -> str:
    """The task of a distillation config.

    Args:
        cfg: the distillation config (``model.architecture`` is the student).
        task: explicit task (the proxy config's ``task`` key); None or 'auto' infers it from ``kd_zero_task`` of
            the config, else from the student's scope (``_scope_`` or the ``cfg_path`` prefix) or type.

    Returns:
        One of :data:`TASKS`.

    Raises:
        ValueError: unknown task name, or a student whose task cannot be inferred.
    """
    task = task if task not in (None, 'auto') else cfg.get('kd_zero_task')
    if task is None:
        model = cfg.get('model', {}) or {}
        arch = model.get('architecture', {}) or {}
        scope = arch.get('_scope_') or str(arch.get('cfg_path', '')).partition('::')[0]
        task = _SCOPE_TASKS.get(scope) or _TYPE_TASKS.get(arch.get('type'))
        if task is None and model.get('type') == 'FpnTeacherDistill':
            task = 'detection'
        if task is None:
            raise ValueError(f"cannot infer the KD-Zero search task of student {arch.get('type') or arch!r}: set "
                             f"proxy.task (or kd_zero_task in the distillation config) to one of {list(TASKS)}")
    if task not in TASKS:
        raise ValueError(f'unknown KD-Zero search task {task!r}; valid tasks are {list(TASKS)}')
    return task


def check_searchable(task: str, config: str = '') -> None:
    """Raise for tasks the search does not support (detection: :data:`DETECTION_MESSAGE`)."""
    if task == 'detection':
        raise ValueError(f'{config}: {DETECTION_MESSAGE}' if config else DETECTION_MESSAGE)
    if task not in SEARCHABLE_TASKS:
        raise ValueError(f'KD-Zero searches {list(SEARCHABLE_TASKS)}, got {task!r}')


@torch.no_grad()
def collect_classification(model, dataloader, max_samples: int) -> Dict[str, Tensor]:
    """Student and teacher logits/embeddings of a ``SingleTeacherDistill`` on up to ``max_samples`` images.

    Returns:
        dict of (n, ...) tensors: logits_s, logits_t, emb_s, emb_t, labels.
    """
    model.eval()
    out: Dict[str, List[Tensor]] = {k: [] for k in ('logits_s', 'logits_t', 'emb_s', 'emb_t', 'labels')}
    seen = 0
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        inputs = data['inputs']
        for tag, net in (('s', model.student), ('t', model.teacher)):
            feats = net.extract_feat(inputs)
            out[f'emb_{tag}'].append(feats[-1].flatten(1) if isinstance(feats, tuple) else feats.flatten(1))
            out[f'logits_{tag}'].append(net.head(feats))
        out['labels'].append(torch.cat([s.gt_label for s in data['data_samples']]))
        seen += inputs.shape[0]
        if seen >= max_samples:
            break
    return {k: torch.cat(v)[:max_samples].cpu().float() for k, v in out.items()}


def _seg_forward(net, inputs: Tensor, data_samples: list, cka_feature: str) -> tuple:
    """One whole-image forward of an mmseg ``EncoderDecoder``.

    Returns:
        (feature map (B, C, h, w) for the CKA, list of (K, H_i, W_i) logits at each label's resolution: the
        decode-head logits upsampled, padding removed and resized to the original shape exactly as mmseg's
        ``predict`` does before ``IoUMetric``).
    """
    captured = []
    handle = net.decode_head.conv_seg.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        feats = net.extract_feat(inputs)
        logits = net.decode_head(feats)
    finally:
        handle.remove()
    emb = net.decode_head._transform_inputs(feats) if cka_feature == 'head_input' else captured[-1]
    metas = [s.metainfo for s in data_samples]
    up = net.decode_head.predict_by_feat(logits, metas)
    samples = net.postprocess_result(up, [s.clone() for s in data_samples])
    return emb, [s.seg_logits.data for s in samples]


def _pixel_rows(feat: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` feature vectors at fixed random pixel positions of each image: (B, C, h, w) -> (B * count, C)."""
    b, c, h, w = feat.shape
    index = torch.randint(0, h * w, (b, count), generator=generator).to(feat.device)
    return feat.flatten(2).gather(2, index[:, None, :].expand(b, c, count)).permute(0, 2, 1).reshape(-1, c)


@torch.no_grad()
def collect_segmentation(model, dataloader, max_samples: int, ignore_index: int = 255,
                         cka_feature: str = 'head_input', cka_pixels: int = 0, seed: int = 0) -> Dict[str, float]:
    """Segmentation fitness terms of a ``SingleTeacherDistill`` over ``EncoderDecoder`` s ([R] pixels as samples).

    CE, pixel accuracy and the sharpness gap (Eq. 4) average over every labelled pixel (``ignore_index``
    excluded) of the logits at the label resolution; sums are accumulated image by image, so full-resolution
    Cityscapes maps are never concatenated.

    Args:
        model: the proxy-trained distillation model.
        dataloader: held-out split (mmseg test pipeline: ``gt_sem_seg`` at the original resolution).
        max_samples: images to use.
        ignore_index: label value excluded from CE / accuracy / sharpness.
        cka_feature: 'head_input' = the decode head's input feature map (the backbone's last stage, analogue of
            the classifier's pooled embedding), 'classifier_input' = the feature entering ``conv_seg``.
        cka_pixels: 0 = linear CKA over images of the global-average-pooled features; k > 0 = over k pixel
            features per image at fixed random positions (same positions for student and teacher; drawn from
            ``seed``; the student map is resized to the teacher's when they differ).
        seed: seed of the pixel positions.

    Returns:
        ``{'ce', 'sharpness_gap', 'cka', 'accuracy'}`` (accuracy = pixel accuracy in %).
    """
    if cka_feature not in SEG_CKA_FEATURES:
        raise ValueError(f'cka_feature must be one of {SEG_CKA_FEATURES}, got {cka_feature!r}')
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    sums: Dict[str, float] = {}
    emb = {'s': [], 't': []}
    seen = 0
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        take = min(len(data['data_samples']), max_samples - seen)
        inputs, samples = data['inputs'][:take], data['data_samples'][:take]
        (feat_s, logits_s), (feat_t, logits_t) = [_seg_forward(net, inputs, samples, cka_feature)
                                                  for net in (model.student, model.teacher)]
        for ls, lt, sample in zip(logits_s, logits_t, samples):
            for key, value in pixel_sums(ls, lt, sample.gt_sem_seg.data, ignore_index).items():
                sums[key] = sums.get(key, 0.0) + value
        if cka_pixels:
            if feat_s.shape[2:] != feat_t.shape[2:]:
                feat_s = F.interpolate(feat_s, size=feat_t.shape[2:], mode='bilinear', align_corners=False)
            state = generator.get_state()
            emb['s'].append(_pixel_rows(feat_s, cka_pixels, generator).cpu())
            generator.set_state(state)  # the teacher gets the same positions
            emb['t'].append(_pixel_rows(feat_t, cka_pixels, generator).cpu())
        else:
            emb['s'].append(feat_s.mean(dim=(2, 3)).cpu())
            emb['t'].append(feat_t.mean(dim=(2, 3)).cpu())
        seen += inputs.shape[0]
        if seen >= max_samples:
            break
    return segmentation_fitness_terms(sums, torch.cat(emb['s']).float(), torch.cat(emb['t']).float())


def task_fitness(task: str, model, dataloader, max_samples: int, seg_options: Optional[dict] = None
                 ) -> Dict[str, float]:
    """Fitness terms (``ce``, ``sharpness_gap``, ``cka``, ``accuracy``) of a proxy-trained model for ``task``.

    Args:
        task: one of :data:`SEARCHABLE_TASKS`.
        model: the proxy-trained ``SingleTeacherDistill``.
        dataloader: the held-out split.
        max_samples: images to use.
        seg_options: keyword arguments of :func:`collect_segmentation` (ignore_index, cka_feature, cka_pixels,
            seed).
    """
    check_searchable(task)
    if task == 'classification':
        return fitness_terms(**collect_classification(model, dataloader, max_samples))
    return collect_segmentation(model, dataloader, max_samples, **(seg_options or {}))
