"""Ways to run a whole recurrent stack, and the one function that chooses between them.

Backends:
    torch      torch's fused kernels (cuDNN on CUDA, oneDNN on CPU). Needs: no recurrent dropout while
               training, no zoneout, no layer norm.
    fused      lstmkit's compiled LSTM recurrence (C++ extension, built on first use): every LSTM feature
               but projections, on the CPU.
    triton     the LSTM recurrence with Triton kernels per step: every LSTM feature but projections, on
               CUDA devices (on the CPU only through Triton's interpreter, TRITON_INTERPRET=1); needs triton.
    reference  a Python loop over core.step; runs every configuration; the oracle for the others.

``select("auto", ...)`` takes the first backend, in that order, that can run the configuration, logging
once per reason when it had to fall back; where both torch and fused can run a stack on the CPU, it takes
the one measured faster for that shape on this machine (autotune.py). Naming a backend that cannot run the
configuration raises BackendUnsupported.
"""

import logging
from types import ModuleType

import torch
from torch import Tensor

from ..errors import LstmkitError
from . import autotune, fused, reference, torch_nn, triton_gpu
from .spec import StackSpec

BACKENDS: dict[str, ModuleType] = {m.NAME: m for m in (torch_nn, fused, triton_gpu, reference)}
BACKEND_NAMES = ("auto", *BACKENDS)

_log = logging.getLogger(__name__)
_fallbacks_logged: set[str] = set()


class BackendUnsupported(LstmkitError):
    """A named backend cannot run the requested configuration."""


def check_name(name: str) -> None:
    if name not in BACKEND_NAMES:
        raise LstmkitError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")


def select(
    name: str, spec: StackSpec, *, device: torch.device, training: bool, shape: tuple[int, int] | None = None
) -> ModuleType:
    """Returns the backend module that will run ``spec`` on inputs of ``shape`` (batch, steps), which lets
    auto measure; see the module docstring for the rules."""
    check_name(name)
    if name != "auto":
        reason = BACKENDS[name].unsupported(spec, device=device, training=training)
        if reason is not None:
            raise BackendUnsupported(f"backend {name!r} cannot run this configuration: {reason}")
        return BACKENDS[name]
    for backend in BACKENDS.values():
        reason = backend.unsupported(spec, device=device, training=training)
        if reason is None:
            if backend is torch_nn and shape is not None and autotune.enabled():
                if fused.unsupported(spec, device=device, training=training) is None:
                    runners = {"torch": torch_nn.run, "fused": fused.run}
                    return BACKENDS[autotune.choose(spec, *shape, training=training, runners=runners)]
            return backend
        message = f"backend 'auto': {reason}; falling back from {backend.NAME!r}"
        if message not in _fallbacks_logged:
            _fallbacks_logged.add(message)
            _log.info(message)
    raise AssertionError("the reference backend runs every configuration")


def select_trace(name: str, spec: StackSpec, *, device: torch.device, training: bool) -> ModuleType:
    """The backend that records gate traces: the fused one where it runs (and is allowed), else the reference."""
    check_name(name)
    if name in ("auto", fused.NAME) and fused.unsupported(spec, device=device, training=training) is None:
        return fused
    return reference


def select_step(name: str, spec: StackSpec, x: Tensor, *, training: bool) -> ModuleType | None:
    """The backend that runs one step of the whole stack in one call (fused), or None: then LSTM.step runs
    ``forward`` on a one-step sequence."""
    check_name(name)
    if name in ("auto", fused.NAME) and fused.step_unsupported(spec, x, training) is None:
        return fused
    return None
