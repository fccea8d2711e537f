"""Ways to run a whole recurrent stack, and the one function that chooses between them.

Backends, fastest first:
    torch      torch's fused kernels (cuDNN on CUDA, oneDNN on CPU). Needs: no recurrent dropout while
               training.
    reference  a Python loop over core.step; runs every configuration; the oracle for the others.

``select("auto", ...)`` takes the first backend that can run the configuration and logs, once per reason,
when it had to fall back. Naming a backend that cannot run the configuration raises BackendUnsupported.
"""

import logging
from types import ModuleType

import torch
from torch import Tensor

from ..errors import LstmkitError
from . import fused, reference, torch_nn
from .spec import StackSpec

BACKENDS: dict[str, ModuleType] = {m.NAME: m for m in (torch_nn, fused, reference)}
BACKEND_NAMES = ("auto", *BACKENDS)

_log = logging.getLogger(__name__)
_fallbacks_logged: set[str] = set()


class BackendUnsupported(LstmkitError):
    """A named backend cannot run the requested configuration."""


def check_name(name: str) -> None:
    if name not in BACKEND_NAMES:
        raise LstmkitError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")


def select(name: str, spec: StackSpec, *, device: torch.device, training: bool) -> ModuleType:
    """Returns the backend module that will run ``spec``: see the module docstring for the rules."""
    check_name(name)
    if name != "auto":
        reason = BACKENDS[name].unsupported(spec, device=device, training=training)
        if reason is not None:
            raise BackendUnsupported(f"backend {name!r} cannot run this configuration: {reason}")
        return BACKENDS[name]
    for backend in BACKENDS.values():
        reason = backend.unsupported(spec, device=device, training=training)
        if reason is None:
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
