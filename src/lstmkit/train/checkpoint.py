"""Tensors to and from safetensors files (never pickle), including optimizer and RNG state."""

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import LstmkitError


def save_tensors(path: Path, tensors: dict[str, Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path: Path) -> dict[str, Tensor]:
    """Loads a safetensors file; a missing, truncated or corrupted file raises LstmkitError."""
    if not path.is_file():
        raise LstmkitError(f"missing file: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise LstmkitError(f"cannot read {path}: the file is truncated or corrupted ({err})") from None


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Loads a module's weights from safetensors, naming missing, unexpected or misshapen entries."""
    tensors = load_tensors(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise LstmkitError(
            f"{path} does not match the model in config.json (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(unexpected) or 'none'})"
        )
    for name, tensor in tensors.items():
        if tensor.shape != own[name].shape:
            raise LstmkitError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, "
                f"the model in config.json needs {tuple(own[name].shape)}"
            )
    module.load_state_dict(tensors)


def optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Splits an optimizer state_dict into tensors (for safetensors) and plain values (for JSON)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{pid}.{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = tensor
    for pid, values in plain["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": plain["param_groups"]}


def rng_tensors() -> dict[str, Tensor]:
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for k, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{k}"] = s
    return tensors


def restore_rng(tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
