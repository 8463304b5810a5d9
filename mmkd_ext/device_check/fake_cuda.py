"""A training step's forward on *fake* CUDA tensors: device bugs caught on a machine without a GPU (issue 23).

PyTorch's ``FakeTensorMode`` runs every op on shape/dtype/device metadata only, and applies CUDA's device rules:
an op that mixes a ``cuda:0`` tensor with a (non 0-dim) CPU tensor raises ``Expected all tensors to be on the same
device, but found at least two devices, cuda:0 and cpu!`` exactly as a GPU run would. :func:`fake_cuda_train_step`
therefore

1. deep-copies the model (the real one is never modified) with every parameter and buffer replaced by a fake CUDA
   tensor, everywhere it is referenced (``_parameters``/``_buffers``, python attributes, lists, closures: the copy's
   memo maps each original tensor to its fake twin, and closures are copied too), as ``model.to('cuda')`` would
   leave them; every other tensor (a CPU index kept in a closure or a python attribute) stays a real CPU tensor,
   as it would on a GPU;
2. sets the MMEngine data preprocessors' device as ``BaseModel.to('cuda')`` does;
3. runs what ``train_step`` runs up to the losses: ``data_preprocessor(data, True)``, ``model(**data,
   mode='loss')`` (for MMRazor algorithms their own loss forward, teacher included) and ``parse_losses``, under
   :class:`CpuPassthroughFakeMode` (ops on real CPU tensors alone run for real and keep their values). Should the
   data preprocessor itself stop at a data-dependent op, it runs on the CPU and its outputs are moved to fake CUDA
   (the report says so).

A device mismatch raises :class:`FakeCudaDeviceError` naming the innermost module (its name in the model) and the
file:line of the op. Ops whose output depends on values (``nonzero``, boolean indexing, ``.item()``) run under a
``ShapeEnv`` with unbacked symbolic sizes; a Python branch on such a value cannot, and the step stops there. Then the
report is ``partial`` and says where; the modules the fake step did not reach are *replayed*: a real CPU forward of
another copy records every module's first inputs, and each module not yet covered (and not containing the op) runs
on fake CUDA copies of its recorded inputs (distillation losses, connectors, the student...). Replay assumes those
inputs are on the device, so it checks the code inside each replayed module only.

Not checked: backward (fake tensors cannot run it without a CUDA context), the optimizer step, autocast, and the
values of anything.
"""
from __future__ import annotations

import copy
import linecache
import os.path as osp
import random
import traceback
import types
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensor,
    FakeTensorDeviceMismatchError,
    FakeTensorMode,
    UnsupportedFakeTensorException,
    UnsupportedOperatorException,
)
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode, ShapeEnv
from torch.utils._pytree import tree_leaves

DEVICE = torch.device('cuda')  # what ``BaseModel.to('cuda')`` and MMEngine's ``get_device()`` give
_MISMATCH = 'Expected all tensors to be on the same device'
_FAKE_LIMITS = (GuardOnDataDependentSymNode, DataDependentOutputException, DynamicOutputShapeException,
                UnsupportedOperatorException, UnsupportedFakeTensorException)
_FAKE_LIMIT_TEXTS = ('not supported for tensor subclasses', 'data pointer', "doesn't have storage",
                     'data-dependent')
_TORCH_DIR = osp.dirname(torch.__file__)
_ROOT = '<model>'  # the name of the model itself in reports


class CpuPassthroughFakeMode(FakeTensorMode):
    """``FakeTensorMode`` in which an op that touches no fake tensor, no symbolic size and no device but the CPU runs
    for real, as it would on the CPU of a GPU machine: bookkeeping on CPU tensors (AMD's FLOPs solver, MMEngine's
    padding sizes) keeps its values. A real CPU tensor that then meets a fake CUDA one still raises CUDA's error (and
    a 0-dim one passes, as on CUDA); ops on fake tensors and ``.to('cuda')`` / ``device='cuda'`` are faked."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if all(_real_cpu(x) for x in tree_leaves((args, kwargs))):
            return func(*args, **kwargs)  # the mode is off inside its own dispatch: a real CPU op
        return super().__torch_dispatch__(func, types, args, kwargs)


def _real_cpu(leaf: Any) -> bool:
    if isinstance(leaf, (FakeTensor, torch.SymInt, torch.SymFloat, torch.SymBool)):
        return False
    return not isinstance(leaf, torch.device) or leaf.type == 'cpu'


class FakeCudaDeviceError(RuntimeError):
    """A CPU tensor met a CUDA tensor in the fake-CUDA step (CUDA's own message first).

    Attributes:
        module: qualified name of the innermost module running the op (``<model>`` for the model itself).
        location: ``file:line (function)`` of the op's innermost frame outside torch.
    """

    def __init__(self, upstream: str, module: str, location: str, code: str = '', callers: Sequence[str] = ()
                 ) -> None:
        self.module, self.location = module, location
        super().__init__(
            f'{upstream}\nfake-CUDA device check: in module {module!r} at {location}'
            + (f': {code}' if code else '')
            + (f' (called from {", ".join(callers)})' if callers else '')
            + '\nA tensor this op uses is on the CPU after model.to(\'cuda\'): keep tensors the model owns in '
            'registered buffers/parameters (register_buffer, so .to() moves them) or create them on the input\'s '
            'device (device=x.device), not in closures or plain attributes.')


@dataclass
class FakeCudaReport:
    """What one fake-CUDA step checked.

    Attributes:
        model: class name of the checked model.
        status: ``'checked'`` (the model's loss forward and ``parse_losses`` ran on fake CUDA) or ``'partial'``.
        preprocessor: how the data preprocessor ran: ``'fake CUDA'``, or on the CPU with its outputs moved to
            fake CUDA, and why.
        losses: loss name -> device of the loss tensor (the full step only).
        partial: why the step stopped (``data-dependent op <op> at <module>, file:line``), None when checked.
        modules_run: modules whose forward ran in the real model's loss step (replay) or in the fake step.
        modules_checked: modules whose forward ran to its end on fake CUDA (fake step + replay).
        replayed: modules run on fake CUDA copies of their recorded inputs.
        replay_stopped: module -> why its replay stopped (exception type, file:line, code).
        not_checked: modules that ran in the loss step but not to their end on fake CUDA (those containing the
            op that stopped the step, and any whose replay stopped as well).
    """

    model: str
    status: str
    preprocessor: str = 'fake CUDA'
    losses: Dict[str, str] = field(default_factory=dict)
    partial: Optional[str] = None
    modules_run: int = 0
    modules_checked: int = 0
    replayed: List[str] = field(default_factory=list)
    replay_stopped: Dict[str, str] = field(default_factory=dict)
    not_checked: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: ``checked: 12/12 modules, losses ...`` or ``partial: <why>; ...``."""
        pre = f'data preprocessor: {self.preprocessor}'
        if self.status == 'checked':
            return (f'checked: {self.modules_checked}/{self.modules_run} modules on fake CUDA, losses '
                    f'{sorted(self.losses)}; {pre}')
        return (f'partial: {self.partial}; {self.modules_checked}/{self.modules_run} modules checked '
                f'({len(self.replayed)} replayed on recorded inputs), not checked: {self.not_checked}; {pre}')

    def to_dict(self) -> dict:
        """The report as a JSON-able dict."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------ copying


def _copy_function(fn: types.FunctionType, memo: dict) -> types.FunctionType:
    """``deepcopy`` of a closure: its cells deep-copied with the same memo (the modules and tensors it closes over
    become the copy's), a cell that cannot be copied kept as is."""
    if not fn.__closure__:
        return fn
    cells = []
    for cell in fn.__closure__:
        try:
            cells.append(types.CellType(copy.deepcopy(cell.cell_contents, memo)))
        except ValueError:  # an empty cell
            cells.append(cell)
        except Exception:  # noqa: BLE001  (an object that cannot be copied: shared, as plain deepcopy would)
            cells.append(cell)
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells))
    new.__kwdefaults__, new.__dict__ = fn.__kwdefaults__, dict(fn.__dict__)
    return new


def _copy_tensor(t: torch.Tensor, memo: dict) -> torch.Tensor:
    """``deepcopy`` of a plain tensor; one inside an autograd graph (a recorder's output of the last step), which
    ``Tensor.__deepcopy__`` refuses, detached."""
    return t.__deepcopy__(memo) if t.is_leaf else t.detach().clone()


@contextmanager
def _copying() -> Iterator[None]:
    """While active, ``copy.deepcopy`` copies closures (plain ``deepcopy`` shares functions, so an instance
    ``forward`` closing over a module would still point at the original module) and non-leaf tensors."""
    dispatch = copy._deepcopy_dispatch  # type: ignore[attr-defined]
    before = {k: dispatch.get(k) for k in (types.FunctionType, torch.Tensor)}
    dispatch[types.FunctionType], dispatch[torch.Tensor] = _copy_function, _copy_tensor
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                dispatch.pop(k, None)
            else:
                dispatch[k] = v


def _fake_twins(model: nn.Module, mode: FakeTensorMode) -> Dict[int, torch.Tensor]:
    """``{id(tensor): fake CUDA twin}`` for every parameter and buffer of ``model`` (a parameter stays one)."""
    memo: Dict[int, torch.Tensor] = {}
    with mode:
        for p in model.parameters():
            if id(p) not in memo and not isinstance(p, nn.parameter.UninitializedParameter):
                memo[id(p)] = nn.Parameter(mode.from_tensor(p.detach()).to(DEVICE), requires_grad=p.requires_grad)
        for b in model.buffers():
            if id(b) not in memo and not isinstance(b, nn.parameter.UninitializedBuffer):
                memo[id(b)] = mode.from_tensor(b).to(DEVICE)
    return memo


def fake_cuda_copy(model: nn.Module, mode: FakeTensorMode) -> nn.Module:
    """A deep copy of ``model`` as ``model.to('cuda')`` would leave it, with fake CUDA parameters and buffers.

    Args:
        model: the real (CPU) model; not modified.
        mode: the fake mode that owns the copy's tensors.

    Returns:
        The copy; its MMEngine data preprocessors' device is ``cuda``.
    """
    memo: Dict[int, Any] = dict(_fake_twins(model, mode))
    memo[id(memo)] = [model]  # keeps the originals alive while the memo maps their ids
    with _copying():
        fake = copy.deepcopy(model, memo)
    _set_preprocessor_device(fake, DEVICE)
    return fake


def _real_copy(model: nn.Module) -> nn.Module:
    with _copying():
        return copy.deepcopy(model)


def _set_preprocessor_device(model: nn.Module, device: torch.device) -> None:
    """What ``BaseModel.to(device)`` does besides moving tensors (``BaseModel._set_device``)."""
    from mmengine.model import BaseDataPreprocessor
    for module in model.modules():
        if isinstance(module, BaseDataPreprocessor):
            module._device = device


def fake_cuda_inputs(obj: Any, mode: FakeTensorMode) -> Any:
    """``obj`` (tensors, MMEngine data elements, lists / tuples / dicts of them) with every tensor fake on CUDA
    (call it with ``mode`` active)."""
    from mmengine.structures import BaseDataElement
    if isinstance(obj, torch.Tensor):
        return mode.from_tensor(obj).to(DEVICE)
    if isinstance(obj, BaseDataElement):
        return obj.to(DEVICE)
    if isinstance(obj, dict):
        return type(obj)((k, fake_cuda_inputs(v, mode)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, '_fields'):
        return type(obj)(fake_cuda_inputs(v, mode) for v in obj)
    return obj


# ------------------------------------------------------------------------------------------------ tracking


class _ModuleTracker:
    """Forward pre/post hooks on every module: the stack of running modules (innermost last; left as it was when
    an op raised) and the modules whose forward ran to its end; optionally each module's first inputs."""

    def __init__(self, model: nn.Module, record_inputs: bool = False) -> None:
        self.stack: List[str] = []
        self.finished: set = set()
        self.inputs: Dict[str, Tuple[tuple, dict]] = {}  # first call per module, in call order
        self.modules: Dict[str, nn.Module] = {}
        self._handles = []
        for name, module in model.named_modules():
            name = name or _ROOT
            self.modules[name] = module
            self._handles.append(module.register_forward_pre_hook(self._pre(name, record_inputs), with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str, record: bool):
        def hook(module, args, kwargs):
            self.stack.append(name)
            if record and name not in self.inputs:
                self.inputs[name] = (args, dict(kwargs))
        return hook

    def _post(self, name: str):
        def hook(module, args, output):
            while self.stack and self.stack.pop() != name:  # entries of calls that raised and were caught
                pass
            self.finished.add(name)
        return hook

    def innermost(self) -> str:
        return self.stack[-1] if self.stack else _ROOT

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _is_within(name: str, ancestors: Sequence[str]) -> bool:
    return any(a == _ROOT or name == a or name.startswith(a + '.') for a in ancestors)


# ------------------------------------------------------------------------------------------------ errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _device_mismatch(exc: BaseException) -> Optional[BaseException]:
    return next((e for e in _chain(exc) if isinstance(e, FakeTensorDeviceMismatchError) or _MISMATCH in str(e)),
                None)


def _fake_limit(exc: BaseException) -> Optional[BaseException]:
    """The exception of the chain that is a fake-tensor limit (data-dependent op, op without a fake kernel)."""
    return next((e for e in _chain(exc) if isinstance(e, _FAKE_LIMITS)
                 or any(t in str(e) for t in _FAKE_LIMIT_TEXTS)), None)


def _short_path(filename: str) -> str:
    for marker in ('site-packages/', 'dist-packages/'):
        if marker in filename:
            return filename.split(marker, 1)[1]
    try:
        rel = osp.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith('..') else rel


def _user_frames(exc: BaseException) -> List[traceback.FrameSummary]:
    """The traceback frames of ``exc`` outside torch and this file, outermost first."""
    return [f for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith(_TORCH_DIR) and f.filename != __file__]


def _where(frame: traceback.FrameSummary) -> str:
    return f'{_short_path(frame.filename)}:{frame.lineno} ({frame.name})'


def op_location(exc: BaseException) -> Tuple[str, str]:
    """``('file:line (function)', source line)`` of the innermost traceback frame outside torch and this file."""
    frames = _user_frames(exc)
    if not frames:
        return 'unknown location', ''
    f = frames[-1]
    return _where(f), (f.line or linecache.getline(f.filename, f.lineno)).strip()


def _op_name(limit: BaseException, code: str) -> str:
    func = getattr(limit, 'func', None)
    if func is not None:
        return str(func)
    if isinstance(limit, GuardOnDataDependentSymNode):
        return f'a Python branch/conversion on a data-dependent value (`{code}`)'
    return f'{type(limit).__name__}: {str(limit).splitlines()[0][:120]}'


def _raise_if_device_error(exc: BaseException, module: str) -> None:
    mismatch = _device_mismatch(exc)
    if mismatch is not None:
        location, code = op_location(exc)
        callers = [_where(f) for f in _user_frames(exc)[-3:-1][::-1]]
        raise FakeCudaDeviceError(str(mismatch).splitlines()[0], module, location, code, callers) from exc


# ------------------------------------------------------------------------------------------------ the step


@contextmanager
def _rng_kept() -> Iterator[None]:
    """The step draws nothing from the real run's random streams (torch, numpy, random)."""
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def _loss_step(model: nn.Module, data: Any) -> Dict[str, Any]:
    """``train_step`` up to the losses: preprocess (training), forward in loss mode, ``parse_losses``."""
    return _forward_losses(model, model.data_preprocessor(data, True))


def _forward_losses(model: nn.Module, data: Any) -> Dict[str, Any]:
    losses = model._run_forward(data, mode='loss')
    model.parse_losses(losses)
    return losses


def _unwrap(model: nn.Module) -> nn.Module:
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _stop_reason(exc: BaseException, tracker: _ModuleTracker) -> str:
    """``data-dependent op <op> at <module>, <file:line>`` for a fake-tensor limit; a device mismatch raises
    :class:`FakeCudaDeviceError`, anything else is re-raised with a note."""
    _raise_if_device_error(exc, tracker.innermost())
    limit = _fake_limit(exc)
    if limit is None:
        exc.add_note('(raised in the fake-CUDA device check, mmkd_ext.device_check; neither a device mismatch nor '
                     f'a known fake-tensor limit; module {tracker.innermost()!r})')
        raise exc
    location, code = op_location(exc)
    return f'data-dependent op {_op_name(limit, code)} at {tracker.innermost()}, {location}'


def _preprocess(model: nn.Module, fake: nn.Module, data_batch: Any, mode: FakeTensorMode,
                tracker: _ModuleTracker) -> Tuple[Any, str]:
    """The fake copy's data preprocessor (training) on ``data_batch``; where it stops at a data-dependent op
    (MMEngine's ``stack_batch`` tests a tensor of the padding sizes), the real one on the CPU, its outputs moved to
    fake CUDA as its ``cast_data`` would have. Returns the data and how the preprocessor ran."""
    data = copy.deepcopy(data_batch)  # outside the mode: real tensors stay real
    try:
        with mode:
            return fake.data_preprocessor(data, True), 'fake CUDA'
    except Exception as exc:  # noqa: BLE001  (classified by _stop_reason)
        why = _stop_reason(exc, tracker)
    tracker.stack = []
    with torch.no_grad():
        data = copy.deepcopy(model.data_preprocessor)(copy.deepcopy(data_batch), True)
    with mode:
        return fake_cuda_inputs(data, mode), f'CPU, outputs moved to fake CUDA ({why})'


def fake_cuda_train_step(model: nn.Module, data_batch: Any, replay: bool = True) -> FakeCudaReport:
    """Run ``model``'s training forward up to the losses on fake CUDA tensors (see the module docstring).

    Args:
        model: an MMEngine ``BaseModel`` (an MMRazor algorithm, a detector...) on the CPU, or a wrapper of one;
            not modified, and no random stream of the process is advanced.
        data_batch: a batch as the dataloader gives it (real CPU tensors).
        replay: where the step stops at a data-dependent op, replay the modules it did not reach.

    Returns:
        What was checked.

    Raises:
        FakeCudaDeviceError: a CPU tensor met a CUDA one (module and file:line in the message).
    """
    model = _unwrap(model)
    with _rng_kept():
        mode = CpuPassthroughFakeMode(allow_non_fake_inputs=True, shape_env=ShapeEnv(), static_shapes=True)
        fake = fake_cuda_copy(model, mode)
        tracker = _ModuleTracker(fake)
        try:
            data, how = _preprocess(model, fake, data_batch, mode, tracker)
            report = FakeCudaReport(type(model).__name__, 'checked', preprocessor=how)
            try:
                with mode:
                    losses = _forward_losses(fake, data)
            except Exception as exc:  # noqa: BLE001  (classified by _stop_reason)
                report.status, report.partial = 'partial', _stop_reason(exc, tracker)
                stopped = (tracker.stack or [_ROOT]) + ([] if how == 'fake CUDA' else ['data_preprocessor'])
                if replay:
                    _replay(model, data_batch, mode, tracker, stopped, report)
                else:
                    report.modules_checked = len(tracker.finished)
                return report
        finally:
            tracker.remove()
    report.losses = {k: _device_of(v) for k, v in losses.items()}
    report.modules_run = report.modules_checked = len(tracker.finished)
    return report


def _device_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(value.device)
    if isinstance(value, (list, tuple)) and value:
        return ','.join(sorted({_device_of(v) for v in value}))
    return type(value).__name__


def _replay(model: nn.Module, data_batch: Any, mode: FakeTensorMode, tracker: _ModuleTracker, stopped: List[str],
            report: FakeCudaReport) -> None:
    """Cover what the stopped fake step did not reach: each module that the real loss step runs, not yet
    checked, not containing the op, and not inside a module replayed already, runs on fake CUDA copies of its
    recorded inputs. Fills ``report``."""
    real = _real_copy(model)
    recorder = _ModuleTracker(real, record_inputs=True)
    try:
        with torch.no_grad():
            _loss_step(real, copy.deepcopy(data_batch))
    except Exception as exc:  # noqa: BLE001  (the real CPU step itself fails: nothing to replay)
        report.partial += f'; no replay (the real CPU loss step raised {type(exc).__name__}: {exc})'
    finally:
        recorder.remove()
    blocked = list(stopped)  # modules containing an op that cannot run fake
    for name, (args, kwargs) in recorder.inputs.items():
        if name in tracker.finished or name in blocked or _is_within(name, report.replayed):
            continue
        tracker.stack = []
        try:
            with mode:
                tracker.modules[name](*fake_cuda_inputs(args, mode), **fake_cuda_inputs(kwargs, mode))
        except Exception as exc:  # noqa: BLE001  (device errors raise; the rest stays not checked)
            _raise_if_device_error(exc, tracker.innermost())
            blocked.extend(tracker.stack or [name])
            location, code = op_location(exc)
            report.replay_stopped[name] = f'{type(exc).__name__} at {location}: {code}'
            continue
        report.replayed.append(name)
    ran = set(recorder.inputs) | tracker.finished
    report.modules_run = len(ran)
    report.modules_checked = len(ran & tracker.finished)
    report.not_checked = sorted(ran - tracker.finished)
