"""Device resolution."""

import torch

from ..errors import LstmkitError


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" is CUDA when available, else the CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LstmkitError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LstmkitError(f"device {name!r} was asked for but this machine has no CUDA device")
    return device
