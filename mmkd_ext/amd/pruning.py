"""Structural pruning of AMD (supp. §1, METHODS.md §1.3): prunable units, binary masks, ranking, nesting.

A *prunable unit* is a group of structures that can be removed together without changing any
tensor shape outside it:

- ``'head'``: the I attention heads of one transformer block (supp. Eq. 1). The mask multiplies the
  per-head slices of the input of the output projection, i.e. ``sum_i psi_i Attn_i(X) W_O^(i)`` ([R] §1.3).
- ``'neuron'``: the d_ff intermediate neurons of one FFN (supp. Eq. 2, [R] per-neuron granularity);
  the mask multiplies the input of the second linear layer. (The equation as printed gates whole FFNs;
  ``ffn_granularity='layer'`` was removed, see :func:`find_units`.)
- ``'channel'``: the inner channels of one residual block of a CNN (between ``conv_k`` and
  ``conv_{k+1}``), so the residual widths never change (Li et al. [17], greedy filter pruning). For the
  pre-activation blocks of the CIFAR Wide ResNets that is ``conv1 -> bn2 -> conv2``; for the plain CIFAR VGGs
  it is the output of every conv (with its BN) that feeds another conv, max-pools in between included.

Every mask multiplies the *input of the consuming module* (``proj``, ``fc2``, ``conv_{k+1}``). Zeroing
that input is exactly what physically removing the structure does, so a masked model and its
densified copy (:func:`densify`) compute the same function.

Nested candidates (supp. §8.3): one ranking per ranking group is computed once; a pruning ratio r
removes the lowest ``round(r * n)`` units of every group. A larger r removes a superset, so every
smaller candidate is a sub-network of every larger one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmpretrain.models.utils.attention import WindowMSA
from torch import Tensor, nn

from ..models.cifar_vgg import CIFARVGG

UNIT_KINDS = ('head', 'neuron', 'channel')


@dataclass
class PrunableUnit:
    """One layer's prunable structures and how to mask / slice them.

    Attributes:
        name: unique name, e.g. ``'backbone.layers.3.attn'``.
        kind: one of :data:`UNIT_KINDS`.
        size: number of structures (heads, neurons, channels).
        stage: stage index (Swin per-stage ranking; 0 for ViT).
        consumer: name of the module whose input the mask multiplies.
        dim: dimension of the consumer input that holds the structures (-1 for tokens, 1 for NCHW).
        width: features per structure along ``dim`` (head_dim for heads, 1 otherwise).
        producers: ``(module_name, role)`` pairs sliced by :func:`densify` on their *output* side.
        cost_modules: module names whose FLOPs scale with the kept fraction of this unit.
    """
    name: str
    kind: str
    size: int
    stage: int
    consumer: str
    dim: int
    width: int
    producers: List[Tuple[str, str]] = field(default_factory=list)
    cost_modules: List[str] = field(default_factory=list)

    @property
    def num_masks(self) -> int:
        return self.size


# ---------------------------------------------------------------------------------------------------
# Unit discovery
# ---------------------------------------------------------------------------------------------------
def _linears(module: nn.Module) -> List[Tuple[str, nn.Linear]]:
    return [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]


def _join(*parts: str) -> str:
    return '.'.join(p for p in parts if p)


def _transformer_units(backbone: nn.Module, prefix: str, ffn_granularity: str) -> List[PrunableUnit]:
    """Head and FFN units of a mmpretrain VisionTransformer / SwinTransformer (duck-typed).

    An attention module is anything with ``qkv`` and ``proj`` linears and ``num_heads``; an FFN is a
    module named ``ffn`` whose first and last linears are fc1 and fc2.
    """
    units: List[PrunableUnit] = []
    stage_of: Dict[str, int] = {}
    for name, _ in backbone.named_modules():
        parts = name.split('.')
        if len(parts) >= 2 and parts[0] == 'stages' and parts[1].isdigit():
            stage_of[name] = int(parts[1])
    for name, module in backbone.named_modules():
        full = _join(prefix, name)
        stage = stage_of.get(name, 0)
        if isinstance(getattr(module, 'qkv', None), nn.Linear) and isinstance(getattr(module, 'proj', None),
                                                                              nn.Linear):
            heads = int(module.num_heads)
            head_dim = module.proj.in_features // heads
            units.append(PrunableUnit(
                name=full, kind='head', size=heads, stage=stage, consumer=_join(full, 'proj'), dim=-1,
                width=head_dim, producers=[(_join(full, 'qkv'), 'qkv')], cost_modules=[full]))
        elif name.split('.')[-1] == 'ffn':
            lins = _linears(module)
            if len(lins) < 2:
                continue
            (n1, fc1), (n2, _) = lins[0], lins[-1]
            units.append(PrunableUnit(
                name=full, kind='neuron', size=fc1.out_features, stage=stage, consumer=_join(full, n2), dim=-1,
                width=1, producers=[(_join(full, n1), 'linear')], cost_modules=[full]))
    return units


def _norm_of(block: nn.Module, index: int) -> Tuple[Optional[str], Optional[nn.Module]]:
    for attr in (f'norm{index}', f'bn{index}'):
        norm = getattr(block, attr, None)
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            # mmpretrain/mmseg ResNets expose norm1 as a property over a registered name (e.g. 'bn1')
            real = getattr(block, f'norm{index}_name', attr)
            return real, norm
    return None, None


def _cnn_units(backbone: nn.Module, prefix: str) -> List[PrunableUnit]:
    """Inner-channel units of residual blocks (BasicBlock: conv1->conv2; Bottleneck: also conv2->conv3)."""
    units: List[PrunableUnit] = []
    for name, block in backbone.named_modules():
        convs = [getattr(block, f'conv{i}', None) for i in (1, 2, 3)]
        if not (isinstance(convs[0], nn.Conv2d) and isinstance(convs[1], nn.Conv2d)):
            continue
        if not hasattr(block, 'downsample'):
            continue  # a residual block has a (possibly None) downsample branch
        stage = _stage_of(name)
        links = [(1, 2)] + ([(2, 3)] if isinstance(convs[2], nn.Conv2d) else [])
        for src, dst in links:
            norm_name, norm = _norm_of(block, src)
            conv_src, conv_dst = convs[src - 1], convs[dst - 1]
            if norm is None or conv_src.groups != 1 or conv_dst.groups != 1:
                continue
            full = _join(prefix, name)
            producers = [(_join(full, f'conv{src}'), 'conv'), (_join(full, norm_name), 'norm')]
            cost = [_join(full, f'conv{src}'), _join(full, norm_name), _join(full, f'conv{dst}')]
            units.append(PrunableUnit(
                name=_join(full, f'conv{src}'), kind='channel', size=conv_src.out_channels, stage=stage,
                consumer=_join(full, f'conv{dst}'), dim=1, width=1, producers=producers, cost_modules=cost))
    return units


def _stage_of(name: str) -> int:
    first = name.split('.')[0]
    return int(first[-1]) - 1 if first.startswith('layer') and first[-1].isdigit() else 0


def _preact_units(backbone: nn.Module, prefix: str) -> List[PrunableUnit]:
    """Inner-channel units of pre-activation blocks (CIFAR WRN ``PreActBlock``: BN-ReLU-conv1-BN-ReLU-conv2).

    The unit is ``conv1`` output -> ``bn2`` -> ``conv2`` input; ``bn1`` and the shortcut see the block input,
    whose (residual) width never changes.

    Args:
        backbone: the backbone (e.g. :class:`~mmkd_ext.models.cifar_wrn.CIFARWideResNet`).
        prefix: its attribute name in the model (unit names start with it).

    Returns:
        One ``'channel'`` unit per pre-activation block, stage = ``layerN`` index.
    """
    units: List[PrunableUnit] = []
    for name, block in backbone.named_modules():
        conv1, conv2, bn2 = (getattr(block, a, None) for a in ('conv1', 'conv2', 'bn2'))
        if not (isinstance(conv1, nn.Conv2d) and isinstance(conv2, nn.Conv2d)
                and isinstance(bn2, nn.modules.batchnorm._BatchNorm) and hasattr(block, 'shortcut')):
            continue
        if conv1.groups != 1 or conv2.groups != 1 or bn2.num_features != conv1.out_channels:
            continue
        full = _join(prefix, name)
        units.append(PrunableUnit(
            name=_join(full, 'conv1'), kind='channel', size=conv1.out_channels, stage=_stage_of(name),
            consumer=_join(full, 'conv2'), dim=1, width=1,
            producers=[(_join(full, 'conv1'), 'conv'), (_join(full, 'bn2'), 'norm')],
            cost_modules=[_join(full, 'conv1'), _join(full, 'bn2'), _join(full, 'conv2')]))
    return units


def _vgg_units(backbone: CIFARVGG, prefix: str) -> List[PrunableUnit]:
    """Output-channel units of the convs of a :class:`~mmkd_ext.models.cifar_vgg.CIFARVGG`.

    Conv k's filters, its BN and conv k+1's input channels form one unit (Li et al. [17] prune VGG this way;
    ReLU and max pooling act per channel). Excluded are the convs whose output leaves the backbone: the last
    conv of the network (it feeds the classifier) and the last conv of every block in ``out_indices``.

    Args:
        backbone: the VGG.
        prefix: its attribute name in the model (unit names start with it).

    Returns:
        One ``'channel'`` unit per pruned conv, stage = its block index.
    """
    convs: List[Tuple[str, nn.Conv2d, Optional[str], int]] = []
    for b, block in enumerate(backbone.blocks):
        layers = list(block.named_children())
        for i, (child, module) in enumerate(layers):
            if isinstance(module, nn.Conv2d):
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                norm = nxt[0] if nxt is not None and isinstance(nxt[1], nn.modules.batchnorm._BatchNorm) else None
                convs.append((_join(prefix, 'blocks', str(b), child), module, norm and
                              _join(prefix, 'blocks', str(b), norm), b))
    last_of_block = {}
    for k, (_, _, _, b) in enumerate(convs):
        last_of_block[b] = k
    exported = {last_of_block[b] for b in backbone.out_indices if b in last_of_block}
    units: List[PrunableUnit] = []
    for k, (name, conv, norm, b) in enumerate(convs[:-1]):
        consumer = convs[k + 1]
        if k in exported or norm is None or conv.groups != 1 or consumer[1].groups != 1:
            continue
        units.append(PrunableUnit(
            name=name, kind='channel', size=conv.out_channels, stage=b, consumer=consumer[0], dim=1, width=1,
            producers=[(name, 'conv'), (norm, 'norm')], cost_modules=[name, norm, consumer[0]]))
    return units


def find_units(model: nn.Module, backbone_name: str = 'backbone',
               ffn_granularity: str = 'neuron') -> List[PrunableUnit]:
    """Discover the prunable units of ``model.<backbone_name>``.

    Args:
        model: an mmpretrain classifier / mmseg segmentor (or anything with the backbone attribute).
        backbone_name: attribute holding the backbone.
        ffn_granularity: ``'neuron'`` ([R], METHODS.md A2). ``'layer'`` (one mask per FFN, supp. Eq. 2 as
            printed) was removed: it never removed an FFN (``min_keep`` kept a neuron of each), its cost
            model counted the masked neurons as removed, and ``normalise=True`` gave every FFN the same score.

    Returns:
        The units in module order.

    Raises:
        TypeError: the backbone has neither transformer blocks nor residual CNN blocks.
    """
    if ffn_granularity != 'neuron':
        raise ValueError(f"ffn_granularity={ffn_granularity!r}: only 'neuron' is supported (FFN neurons are ranked "
                         "and removed one by one); 'layer' (one mask per FFN) was removed because it never "
                         'removed an FFN and its cost model disagreed with the masked model')
    backbone = getattr(model, backbone_name, None)
    if backbone is None:
        raise AttributeError(f'{type(model).__name__} has no attribute {backbone_name!r} to prune; '
                             'set pruner.backbone_name to the attribute that holds the backbone')
    if isinstance(backbone, CIFARVGG):
        units = _vgg_units(backbone, backbone_name)
    else:
        units = _transformer_units(backbone, backbone_name, ffn_granularity)
    if not units:
        units = _cnn_units(backbone, backbone_name)
    if not units:
        units = _preact_units(backbone, backbone_name)
    if not units:
        raise TypeError(
            f'AMD pruning does not support backbone {type(backbone).__name__}: found no transformer blocks '
            '(attention with qkv/proj linears and an ffn), no residual CNN blocks (conv1/conv2 with norm and a '
            'downsample attribute), no pre-activation blocks (bn1/conv1/bn2/conv2 and a shortcut attribute) and it '
            'is not a CIFARVGG with a conv feeding another conv. Supported: mmpretrain VisionTransformer, '
            'SwinTransformer, ResNet/ResNetV1c/ResNetV1d, mmseg ResNet*, mmkd_ext CIFARResNet, CIFARWideResNet, '
            'CIFARVGG.')
    return units


def default_ranking_scope(units: Sequence[PrunableUnit], model: nn.Module, backbone_name: str = 'backbone') -> str:
    """Paper defaults (supp. §1, Li et al.): global for ViT, per stage for Swin, per layer for CNNs."""
    if units and units[0].kind == 'channel':
        return 'layer'
    backbone = getattr(model, backbone_name)
    return 'stage' if 'swin' in type(backbone).__name__.lower() else 'global'


# ---------------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------------
MASK_BUFFER = 'amd_mask'  # name of the mask buffer registered on every consumer module


class MaskSet:
    """Binary masks attached to a model through forward pre-hooks on the consumer modules.

    Every mask is a non-persistent buffer ``amd_mask`` of its consumer module (not a parameter, not in the
    state dict), initialised to 1 (supp. §1). As a buffer it follows ``model.to(...)``, ``.cuda()``,
    ``.half()`` and MMEngine's device placement, and DDP broadcasts it with the other buffers; the values
    are changed in place, so references held elsewhere (DDP's buffer list) stay valid. For importance
    estimation call :meth:`requires_grad` and read ``.grad``.

    Args:
        model: the model the units were found in.
        units: its prunable units.

    Raises:
        KeyError: a unit's consumer is not a module of ``model``.
        RuntimeError: a consumer already holds a mask (another :class:`MaskSet` on the same model).
    """

    def __init__(self, model: nn.Module, units: Sequence[PrunableUnit]) -> None:
        self.units = list(units)
        modules = dict(model.named_modules())
        param = next(model.parameters())
        self._consumers: Dict[str, nn.Module] = {}
        self._identity: Dict[str, bool] = {}
        self._handles = []
        for unit in self.units:
            if unit.consumer not in modules:
                raise KeyError(f'consumer module {unit.consumer!r} of unit {unit.name!r} is not in the model')
            consumer = modules[unit.consumer]
            if MASK_BUFFER in consumer._buffers:
                raise RuntimeError(f'module {unit.consumer!r} already holds an AMD mask; call remove() on the other '
                                   'MaskSet (AMDPruner.masks) of this model before building a new one')
            consumer.register_buffer(MASK_BUFFER, torch.ones(unit.num_masks, device=param.device,
                                                             dtype=param.dtype), persistent=False)
            self._consumers[unit.name] = consumer
            self._identity[unit.name] = True
            self._handles.append(consumer.register_forward_pre_hook(self._hook(unit)))

    @property
    def masks(self) -> Dict[str, Tensor]:
        """``{unit name: (num_masks,) mask}``: the live buffers (wherever the model was moved)."""
        return {name: getattr(module, MASK_BUFFER) for name, module in self._consumers.items()}

    def _hook(self, unit: PrunableUnit):
        def hook(module, args):
            mask = getattr(module, MASK_BUFFER)
            if self._identity[unit.name] and not mask.requires_grad:
                return None  # identity: the unpruned model runs untouched (no device sync to find out)
            return (apply_unit_mask(args[0], mask, unit), ) + tuple(args[1:])
        return hook

    def requires_grad(self, flag: bool = True) -> None:
        """Make every mask a leaf that requires (or not) gradients; a new leaf replaces each buffer."""
        for module in self._consumers.values():
            module._buffers[MASK_BUFFER] = getattr(module, MASK_BUFFER).detach().requires_grad_(flag)

    @torch.no_grad()
    def set_keep(self, keep: Dict[str, Tensor]) -> None:
        """Set binary masks from ``{unit name: (size,) bool}`` keep vectors (in place)."""
        for unit in self.units:
            k = keep[unit.name]
            mask = k.float()
            getattr(self._consumers[unit.name], MASK_BUFFER).copy_(mask)
            self._identity[unit.name] = bool(mask.all())

    @torch.no_grad()
    def reset(self) -> None:
        """All masks back to 1 (in place)."""
        for name, module in self._consumers.items():
            getattr(module, MASK_BUFFER).fill_(1)
            self._identity[name] = True

    def remove(self) -> None:
        """Remove the hooks and the mask buffers (the model is unmasked afterwards)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for module in self._consumers.values():
            module._buffers.pop(MASK_BUFFER, None)
        self._consumers = {}


def apply_unit_mask(x: Tensor, mask: Tensor, unit: PrunableUnit) -> Tensor:
    """Multiply the structures of ``x`` along ``unit.dim`` by ``mask`` (supp. Eqs. 1-2).

    Args:
        x: consumer input, e.g. (B, N, I*d_h) for heads, (B, N, d_ff) for neurons, (B, C, H, W) for channels.
        mask: (I,), (d_ff,) or (C,).
        unit: the unit (dim and width per structure).

    Returns:
        ``x`` with every structure scaled by its mask value, same shape.
    """
    full = mask.repeat_interleave(unit.width) if unit.width > 1 else mask
    dim = unit.dim % x.dim()
    shape = [1] * x.dim()
    shape[dim] = full.numel()
    if x.shape[dim] != full.numel():
        raise ValueError(f'unit {unit.name!r}: consumer input has {x.shape[dim]} features on dim {dim}, '
                         f'the mask covers {full.numel()}')
    return x * full.reshape(shape).to(x.dtype)


# ---------------------------------------------------------------------------------------------------
# Normalisation and ranking
# ---------------------------------------------------------------------------------------------------
def l2_normalise(scores: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Layer-wise l2 normalisation before ranking (supp. §1 "for balanced pruning [23]", [R] Molchanov form).

    ``S_hat_{l,k} = S_{l,k} / sqrt(sum_j S_{l,j}^2)`` within each unit l.

    Args:
        scores: ``{unit name: (size,) non-negative scores}``.

    Returns:
        Normalised scores, same shapes (an all-zero layer stays zero).
    """
    return {k: v / v.norm(p=2).clamp_min(1e-12) for k, v in scores.items()}


def ranking_groups(units: Sequence[PrunableUnit], scope: str) -> Dict[Tuple, List[PrunableUnit]]:
    """Group units that share one ranking: per type always; globally, per stage or per layer.

    Args:
        units: prunable units.
        scope: ``'global'`` (ViT, supp. §1), ``'stage'`` (Swin, supp. §1) or ``'layer'`` (CNN, Li et al.).

    Returns:
        ``{group key: units}``.
    """
    if scope not in ('global', 'stage', 'layer'):
        raise ValueError(f"ranking scope must be 'global', 'stage' or 'layer', got {scope!r}")
    groups: Dict[Tuple, List[PrunableUnit]] = {}
    for u in units:
        key = {'global': (u.kind, ), 'stage': (u.kind, u.stage), 'layer': (u.kind, u.name)}[scope]
        groups.setdefault(key, []).append(u)
    return groups


@dataclass
class Ranking:
    """Removal order of every ranking group: entries ``(unit name, index)``, least important first.

    The top-scored structure of every unit is *protected* (never removed, [R] keep at least one)
    unless ``min_keep=0``.
    """
    order: Dict[Tuple, List[Tuple[str, int]]]
    totals: Dict[Tuple, int]
    sizes: Dict[str, int]

    def keep_for_ratio(self, ratio: float) -> Dict[str, Tensor]:
        """Binary keep vectors when the lowest ``round(ratio * n_group)`` structures of every group go.

        Args:
            ratio: pruning ratio r in [0, 1].

        Returns:
            ``{unit name: (size,) bool}``.
        """
        removed: Dict[str, List[int]] = {}
        for key, order in self.order.items():
            n_remove = min(len(order), int(round(ratio * self.totals[key])))
            for name, idx in order[:n_remove]:
                removed.setdefault(name, []).append(idx)
        keep = {name: torch.ones(size, dtype=torch.bool) for name, size in self.sizes.items()}
        for name, idxs in removed.items():  # one indexed write per unit, not one per structure (a bisection of the
            keep[name][torch.tensor(idxs, dtype=torch.long)] = False  # scale solver calls this tens of times)
        return keep


def rank(scores: Dict[str, Tensor], units: Sequence[PrunableUnit], scope: str, normalise: bool = True,
         min_keep: int = 1) -> Ranking:
    """Rank structures by importance inside each ranking group (supp. §1).

    Args:
        scores: ``{unit name: (size,) scores}``; larger is more important.
        units: the units.
        scope: see :func:`ranking_groups`.
        normalise: apply :func:`l2_normalise` first (supp. §1).
        min_keep: structures per unit that are never pruned ([R] default 1; 0 lets a layer vanish).

    Returns:
        The :class:`Ranking`.
    """
    if normalise:
        scores = l2_normalise(scores)
    order, totals = {}, {}
    for key, group in ranking_groups(units, scope).items():
        entries = []
        for u in group:
            s = scores[u.name].detach().float().cpu()
            if s.numel() != u.size:
                raise ValueError(f'unit {u.name!r} has {u.size} structures but {s.numel()} scores')
            protected = set(torch.argsort(s, descending=True)[:min_keep].tolist())
            entries += [(float(s[i]), u.name, i) for i in range(u.size) if i not in protected]
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        order[key] = [(n, i) for _, n, i in entries]
        totals[key] = sum(u.size for u in group)
    return Ranking(order, totals, {u.name: u.size for u in units})


def l1_filter_scores(model: nn.Module, units: Sequence[PrunableUnit], greedy_keep: Optional[Dict[str, Tensor]] = None
                     ) -> Dict[str, Tensor]:
    """L1 norms of the filters that produce each channel unit (Li et al. [17]).

    Args:
        model: the CNN.
        units: its ``'channel'`` units.
        greedy_keep: optional keep vectors of the previous pruning; the greedy variant of Li et al.
            ignores the kernel slices of input channels already removed by the unit that feeds this one.

    Returns:
        ``{unit name: (C,) sum_{c,k,k} |W|}``.
    """
    modules = dict(model.named_modules())
    by_consumer = {u.consumer: u for u in units}
    scores = {}
    for u in units:
        if u.kind != 'channel':
            raise TypeError(f'L1 filter scores apply to CNN channel units, {u.name!r} is a {u.kind!r} unit')
        weight = modules[u.producers[0][0]].weight.detach().abs()
        feeding = by_consumer.get(u.producers[0][0])
        if greedy_keep is not None and feeding is not None:
            weight = weight[:, greedy_keep[feeding.name].to(weight.device)]
        scores[u.name] = weight.flatten(1).sum(1)
    return scores


# ---------------------------------------------------------------------------------------------------
# Densify: physically remove the pruned structures
# ---------------------------------------------------------------------------------------------------
def _slice_param(module: nn.Module, attr: str, index: Tensor, dim: int) -> None:
    p = getattr(module, attr, None)
    if p is None:
        return
    new = p.data.index_select(dim, index.to(p.device)).clone()
    if isinstance(p, nn.Parameter):
        setattr(module, attr, nn.Parameter(new, requires_grad=p.requires_grad))
    else:
        module.register_buffer(attr, new)


def _shrink_producer(module: nn.Module, role: str, idx: Tensor, unit: PrunableUnit) -> None:
    if role == 'qkv':  # rows [q | k | v], each num_heads * head_dim
        per = unit.size * unit.width
        feat = (idx[:, None] * unit.width + torch.arange(unit.width)).flatten()
        rows = torch.cat([feat + j * per for j in range(3)])
        _slice_param(module, 'weight', rows, 0)
        _slice_param(module, 'bias', rows, 0)
        module.out_features = rows.numel()
    elif role in ('linear', 'conv'):
        _slice_param(module, 'weight', idx, 0)
        _slice_param(module, 'bias', idx, 0)
        if role == 'linear':
            module.out_features = idx.numel()
        else:
            module.out_channels = idx.numel()
    elif role == 'norm':
        for attr in ('weight', 'bias', 'running_mean', 'running_var'):
            _slice_param(module, attr, idx, 0)
        module.num_features = idx.numel()
    else:
        raise ValueError(f'unknown producer role {role!r}')


def _shrink_consumer(module: nn.Module, idx: Tensor, unit: PrunableUnit) -> None:
    feat = (idx[:, None] * unit.width + torch.arange(unit.width)).flatten() if unit.width > 1 else idx
    _slice_param(module, 'weight', feat, 1)
    if isinstance(module, nn.Linear):
        module.in_features = feat.numel()
    else:
        module.in_channels = feat.numel()


class PrunedWindowMSA(WindowMSA):
    """mmpretrain ``WindowMSA`` (Swin) whose heads were physically removed by :func:`densify`.

    ``WindowMSA.forward`` takes the head width from its input width (``C // num_heads``), which no longer
    holds once heads are gone. This subclass keeps the original head width in ``head_dims`` and is otherwise
    the same computation: same parameters and buffers (state-dict keys), same ``scale`` (the original
    ``head_dims ** -0.5``, or ``qk_scale``), the relative position bias table holds one column per kept head.
    :func:`densify` turns a ``WindowMSA`` into this class in place (``__class__`` swap), so the module tree of
    the mmpretrain ``SwinTransformer`` is unchanged.
    """

    head_dims: int

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Window attention with ``num_heads`` heads of width ``head_dims`` (input/output width ``embed_dims``).

        Args:
            x: (num_windows * B, N, embed_dims) window tokens.
            mask: optional (num_windows, N, N) additive mask with values in (-inf, 0] (shifted windows).

        Returns:
            (num_windows * B, N, embed_dims).
        """
        batch, n, _ = x.shape
        inner = self.num_heads * self.head_dims
        qkv = self.qkv(x).reshape(batch, n, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        area = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(area, area, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.view(batch // windows, windows, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = self.attn_drop(self.softmax(attn))
        out = (attn @ v).transpose(1, 2).reshape(batch, n, inner)
        return self.proj_drop(self.proj(out))


def _check_head_owner(owner: nn.Module, name: str) -> None:
    if isinstance(owner, WindowMSA) or (hasattr(owner, 'head_dims') and hasattr(owner, 'embed_dims')):
        return
    raise NotImplementedError(
        f'cannot physically remove heads of {type(owner).__name__} ({name}): densify supports mmpretrain '
        'MultiheadAttention (ViT/DeiT) and WindowMSA (Swin); use the masked model for other attention modules.')


def _remove_heads(owner: nn.Module, idx: Tensor, unit: PrunableUnit) -> None:
    """Set the head count of an attention module whose qkv/proj were sliced to the heads ``idx``."""
    owner.num_heads = idx.numel()
    if isinstance(owner, WindowMSA):  # Swin: per-head bias columns; head width stays the original one
        _slice_param(owner, 'relative_position_bias_table', idx, 1)
        owner.head_dims = unit.width
        owner.__class__ = PrunedWindowMSA
    else:  # mmpretrain MultiheadAttention: embed_dims is the inner (heads x head_dims) width
        owner.embed_dims = idx.numel() * owner.head_dims


def densify(model: nn.Module, units: Sequence[PrunableUnit], keep: Dict[str, Tensor]) -> Dict[str, int]:
    """Physically remove masked structures in place (weights are sliced, not masked).

    Args:
        model: the model the units were found in (any :class:`MaskSet` hooks must be removed first).
        units: its units.
        keep: ``{unit name: (size,) bool}``.

    Returns:
        ``{unit name: kept count}``, the widths an exported config needs (:func:`shrink_to_widths`).

    Raises:
        ValueError: a unit would keep no structure (not supported for export).
        NotImplementedError: heads of an attention module other than mmpretrain ``MultiheadAttention`` /
            ``WindowMSA``.
    """
    modules = dict(model.named_modules())
    widths = {}
    for u in units:
        k = keep[u.name]
        idx = torch.nonzero(k.cpu(), as_tuple=False).flatten()
        if u.kind == 'head':
            _check_head_owner(modules[u.name], u.name)
        if idx.numel() == 0:
            raise ValueError(f'unit {u.name!r} keeps no structure; export needs min_keep >= 1')
        for name, role in u.producers:
            _shrink_producer(modules[name], role, idx, u)
        _shrink_consumer(modules[u.consumer], idx, u)
        if u.kind == 'head':
            _remove_heads(modules[u.name], idx, u)
        widths[u.name] = int(idx.numel())
    return widths


def shrink_to_widths(model: nn.Module, units: Sequence[PrunableUnit], widths: Dict[str, int]) -> None:
    """Give a freshly built model the pruned shapes (first ``widths[u]`` structures), for loading weights.

    Args:
        model: model built from the unpruned config.
        units: its units (:func:`find_units`).
        widths: ``{unit name: kept count}`` from :func:`densify`.
    """
    unknown = set(widths) - {u.name for u in units}
    if unknown:
        raise KeyError(f'pruned widths name units {sorted(unknown)} that the model does not have')
    keep = {}
    for u in units:
        k = torch.zeros(u.size, dtype=torch.bool)
        k[:widths.get(u.name, u.size)] = True
        keep[u.name] = k
    densify(model, units, keep)


def keep_is_nested(small: Dict[str, Tensor], large: Dict[str, Tensor]) -> bool:
    """True when every structure kept in ``small`` is also kept in ``large``."""
    return all(bool((small[k] & ~large[k]).sum() == 0) for k in small)

