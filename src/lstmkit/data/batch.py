"""Batches as named fields, never positional tuples."""

from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """inputs (B, T[, I]); targets (B, T) or (B, ...); lengths (B,) for padded sequences, else None."""

    inputs: Tensor
    targets: Tensor
    lengths: Tensor | None = None

    def to(self, device: torch.device) -> "Batch":
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device))

    def __len__(self) -> int:
        return self.inputs.shape[0]
