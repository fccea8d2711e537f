"""Batches as named fields, never positional tuples."""

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
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


def bucketed_rows(lengths: np.ndarray, batch_size: int, pool_batches: int,
                  generator: torch.Generator) -> Iterator[list[int]]:
    """The rows of one training epoch, batch by batch, items of similar length together: the items are
    shuffled, cut into pools of ``pool_batches`` batches, sorted by length within a pool and cut into batches,
    whose order is shuffled again; so little time goes into padding."""
    order = torch.randperm(len(lengths), generator=generator).numpy()
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    for k in torch.randperm(len(batches), generator=generator).tolist():
        yield batches[k].tolist()


def rows_by_length(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Evaluation batches' row indices, all items sorted by length."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
