"""Ways to run a whole recurrent stack, and the one function that chooses between them.

Backends, in the order ``auto`` tries them:
    torch      torch's fused kernels (cuDNN on CUDA, oneDNN on CPU). Needs: no recurrent dropout while
               training, no zoneout, no layer norm.
    fused      lstmkit's compiled LSTM recurrence (C++ extension, built on first use): every LSTM feature
               but projections, on the CPU, float32; the only one that also steps and generates in one call.
    triton     the LSTM recurrence with Triton kernels per step: every LSTM feature but projections, on
               CUDA devices (on the CPU only through Triton's interpreter, TRITON_INTERPRET=1); needs triton.
    reference  a Python loop over core.step; runs every configuration; the oracle for the others.

Each backend module declares what it can do, and ``unsupported`` below checks those declarations in one place:
``MODES`` (the cells it runs), ``FEATURES`` (the StackSpec options it handles; an option it does not declare is
refused, so a field added to StackSpec is refused until a backend handles it), ``PURPOSES`` (among "run",
"trace", "step", "generate"), and its own ``unsupported(spec, *, device, dtype, training, purpose)`` for the
rest (device, dtype, the extension's build). A backend never reroutes an input it cannot run: it refuses it.

``plan(name, spec, ...)`` is the one decision, asked by forward, trace, step and generate alike:

* "auto" takes the first backend, in the order above, that offers the purpose and can serve it, logging once
  per reason when it had to fall back; where both torch and fused can run a stack on the CPU, it takes the one
  measured faster for that shape on this machine (autotune.py). For step and generate, when no backend does
  the call at once, the plan runs the stack over one-step sequences (step), or the caller loops over steps
  (generate).
* While torch records the operations a call makes (``torch.jit.trace`` and the ``torch.onnx.export`` built on
  it; ``torch.export`` and what ``torch.compile`` traces), a compiled extension's outputs would be kept as
  constants: "auto", "fused" and "triton" give way to a backend made of torch operations, with one log line.
  The jit tracer takes torch where it runs the stack, else the reference; torch.export and dynamo take the
  reference, since torch's fused RNN operator does not go through their autograd tracing on the CPU.
  (``torch.compile`` itself runs the layers outside its graph, as it runs torch.nn.LSTM: see nn/layer.py.)
* A named backend that cannot run the input raises BackendUnsupported with the reason. Asked to step or
  generate, a named backend that has no one-call path runs one-step sequences; asked to trace, a backend that
  keeps no gates (torch) leaves the trace to auto's choice, with one log line.
"""

import logging
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor

from ..core.step import CellWeights
from ..errors import LstmkitError
from . import autotune, extension, fused, reference, torch_nn, triton_gpu
from .spec import CELL_NAMES, DESCRIPTIONS, StackSpec, features

BACKENDS: dict[str, ModuleType] = {m.NAME: m for m in (torch_nn, fused, triton_gpu, reference)}
BACKEND_NAMES = ("auto", *BACKENDS)
PURPOSES = ("run", "trace", "step", "generate")
_CANNOT = {
    "trace": "records no gate traces",
    "step": "has no one-call step",
    "generate": "has no one-call generation",
}

_log = logging.getLogger(__name__)
_fallbacks_logged: set[str] = set()


class BackendUnsupported(LstmkitError):
    """A named backend cannot run the requested configuration."""


def check_name(name: str) -> None:
    if name not in BACKEND_NAMES:
        raise LstmkitError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def unsupported(
    name: str, spec: StackSpec, *, device: torch.device, dtype: torch.dtype = torch.float32, training: bool,
    purpose: str = "run",
) -> str | None:
    """Why backend ``name`` cannot serve ``purpose`` for a stack ``spec`` with parameters of ``dtype`` on
    ``device``, or None: its declared cells, options and purposes, then its own conditions."""
    backend = BACKENDS[name]
    if spec.mode not in backend.MODES:
        return f"the {name} backend runs {_either([CELL_NAMES[m] for m in backend.MODES])} layers only"
    missing = [DESCRIPTIONS.get(f, f) for f in features(spec, training) if f not in backend.FEATURES]
    if missing:
        return f"the {name} backend has no {_either(missing)}"
    if purpose not in backend.PURPOSES:
        return f"the {name} backend {_CANNOT[purpose]}"
    return backend.unsupported(spec, device=device, dtype=dtype, training=training, purpose=purpose)


@dataclass(frozen=True)
class Plan:
    """How one call on a stack runs, as ``plan`` decided it.

    Attributes:
        backend: the backend module that does the work.
        spec, training: what the plan was made for.
        purpose: "run", "trace", "step" or "generate".
        one_call: for step and generate, whether the backend does the whole call itself; when False, ``step``
            runs the backend over a one-step sequence, and generation is the caller's loop over steps.
        reason: why this backend: "named", or auto's grounds (what it fell back from, what it measured); a run
            folder records it beside the backend that trained it.
    """

    backend: ModuleType
    spec: StackSpec
    training: bool
    purpose: str
    one_call: bool = True
    reason: str = ""

    @property
    def name(self) -> str:
        return self.backend.NAME

    def run(
        self, x: Tensor, state: tuple[Tensor, ...], weights: list[CellWeights], lengths: Tensor | None = None,
        trace: dict[str, list[Tensor]] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The whole stack over x (B, T, I): backends.reference.run's contract."""
        if trace is None:
            return self.backend.run(self.spec, x, state, weights, lengths, self.training)
        return self.backend.run(self.spec, x, state, weights, lengths, self.training, trace)

    def step(self, x: Tensor, state: tuple[Tensor, ...], weights: list[CellWeights]) -> tuple[Tensor, ...]:
        """One step of the whole stack: x (B, I), state as ``run`` takes it -> the new state."""
        if self.purpose == "step" and self.one_call:
            return self.backend.step(self.spec, x, state, weights)
        _, final = self.backend.run(self.spec, x[:, None], state, weights, None, self.training)  # T = 1
        return final

    def sample(
        self, weights: list[CellWeights], state: tuple[Tensor, Tensor], embedding: Tensor,
        head: tuple[Tensor, Tensor | None], logits: Tensor, uniforms: Tensor, rule: tuple[float, int, int],
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
        """Generation at batch 1 in one call, the backend's ``sample`` (see backends/fused.py for the
        arguments); only in a "generate" plan with ``one_call``."""
        if self.purpose != "generate" or not self.one_call:
            raise LstmkitError(f"this plan ({self.purpose!r} on backend {self.name!r}) has no one-call generation")
        return self.backend.sample(self.spec, weights, state, embedding, head, logits, uniforms, rule)


def _log_once(message: str) -> None:
    if message not in _fallbacks_logged:
        _fallbacks_logged.add(message)
        _log.info(message)


def _first(
    spec: StackSpec, device: torch.device, dtype: torch.dtype, training: bool, shape: tuple[int, int] | None,
    purpose: str,
) -> tuple[ModuleType | None, str]:
    """Auto's choice: the first backend offering ``purpose`` that can serve it (or None), and why."""
    skipped: list[str] = []
    for backend in BACKENDS.values():
        if purpose not in backend.PURPOSES:
            continue
        reason = unsupported(backend.NAME, spec, device=device, dtype=dtype, training=training, purpose=purpose)
        if reason is not None:
            _log_once(f"backend 'auto': {reason}; falling back from {backend.NAME!r}")
            skipped.append(reason)
            continue
        why = f"auto: {'; '.join(skipped)}" if skipped else "auto: the first backend that runs it"
        if backend is torch_nn and shape is not None:
            fused_reason = unsupported(fused.NAME, spec, device=device, dtype=dtype, training=training)
            if fused_reason is not None:
                return backend, f"{why}; {fused_reason}"
            if not autotune.enabled():
                return backend, f"{why}; measuring off (LSTMKIT_AUTOTUNE=0)"
            runners = {"torch": torch_nn.run, "fused": fused.run}
            choice = autotune.choose(spec, *shape, training=training, runners=runners)
            return BACKENDS[choice], f"auto: {autotune.explain(choice, *shape)}"
        return backend, why
    return None, "; ".join(skipped)


def _auto(
    spec: StackSpec, device: torch.device, dtype: torch.dtype, training: bool, shape: tuple[int, int] | None,
    purpose: str,
) -> Plan:
    backend, why = _first(spec, device, dtype, training, shape if purpose != "generate" else None, purpose)
    if backend is not None:
        return Plan(backend, spec, training, purpose, reason=why)
    if purpose in ("step", "generate"):
        runs = _auto(spec, device, dtype, training, shape if purpose == "step" else None, "run")
        return Plan(runs.backend, spec, training, purpose, one_call=False, reason=runs.reason)
    # the reference runs and traces every configuration it declares: only an option nobody declares gets here
    reason = unsupported(reference.NAME, spec, device=device, dtype=dtype, training=training)
    raise BackendUnsupported(f"backend 'auto' found no backend to run this configuration: {reason}")


def _named(
    name: str, spec: StackSpec, device: torch.device, dtype: torch.dtype, training: bool,
    shape: tuple[int, int] | None, purpose: str,
) -> Plan:
    backend = BACKENDS[name]
    if purpose == "trace" and "trace" not in backend.PURPOSES:
        _log_once(f"backend {name!r} records no gate traces; tracing with backend 'auto'")
        return _auto(spec, device, dtype, training, shape, purpose)
    reason = unsupported(name, spec, device=device, dtype=dtype, training=training)
    if reason is not None:
        raise BackendUnsupported(f"backend {name!r} cannot run this configuration: {reason}")
    if purpose in ("step", "generate"):
        at_once = unsupported(name, spec, device=device, dtype=dtype, training=training, purpose=purpose) is None
        return Plan(backend, spec, training, purpose, one_call=at_once, reason="named")
    return Plan(backend, spec, training, purpose, reason="named")


TRACEABLE = ("torch", "reference")  # made of torch operations that tracing, export and compile record


def _recording() -> bool:
    """Whether torch is recording operations (tracing, exporting or compiling) rather than running them."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _traceable(
    name: str, spec: StackSpec, device: torch.device, dtype: torch.dtype, training: bool, purpose: str
) -> Plan:
    """The plan while torch records operations: the torch backend where it can serve, else the reference (the
    only one of the two that keeps gate traces); step and generate then run over one-step sequences."""
    jit_tracer = torch.jit.is_tracing() and purpose != "trace"
    for backend in (torch_nn, reference) if jit_tracer else (reference,):
        reason = unsupported(backend.NAME, spec, device=device, dtype=dtype, training=training)
        if reason is None:
            break
    else:
        raise BackendUnsupported(f"backend {name!r} found no traceable backend for this configuration: {reason}")
    _log_once(f"backend {name!r} under tracing, export or compile: running the traceable {backend.NAME!r} backend")
    one_call = unsupported(backend.NAME, spec, device=device, dtype=dtype, training=training, purpose=purpose) is None
    return Plan(backend, spec, training, purpose, one_call=one_call)


def plan(
    name: str, spec: StackSpec, *, device: torch.device, dtype: torch.dtype = torch.float32, training: bool,
    shape: tuple[int, int] | None = None, purpose: str = "run",
) -> Plan:
    """The one backend decision, for forward ("run"), ``trace``, ``step`` and ``generate``; see the module
    docstring for the rules.

    Args:
        name: "auto" or a backend name.
        spec: the stack. device, dtype: where its parameters live, and their dtype.
        training: the module's training mode (recurrent dropout and dropout are in use only then).
        shape: (batch, steps) of the input, which lets auto measure torch against fused; None skips measuring.
        purpose: "run", "trace", "step" or "generate".

    Raises:
        BackendUnsupported: a named backend cannot run the input, or no backend can (a StackSpec option that
            no backend declares).
    """
    check_name(name)
    if purpose not in PURPOSES:
        raise LstmkitError(f"unknown purpose {purpose!r}; choose one of: {', '.join(PURPOSES)}")
    if name not in TRACEABLE and _recording():
        return _traceable(name, spec, device, dtype, training, purpose)
    if name == "auto":
        return _auto(spec, device, dtype, training, shape, purpose)
    return _named(name, spec, device, dtype, training, shape, purpose)


def setup_seconds() -> float:
    """Seconds this process has spent on one-time set-up: building or loading the fused extension and timing
    backends for auto. Training time limits leave them out."""
    return extension.setup_seconds + autotune.setup_seconds
