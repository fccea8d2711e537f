"""Sliding windows over a scaled series: lookback T rows of inputs -> the next F rows of the targets
(F, the horizon; shape letters as in models/forecaster.py).

A window is named by its start row s: inputs are rows [s, s+T), targets rows [s+T, s+T+F).
"""

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .batch import Batch


class SeriesWindows:
    """Windows of a series, served in batches; also the engine's EpochSource for training.

    Args:
        inputs: (T, I) scaled input columns of the whole series.
        targets: (T, K) scaled target columns of the whole series.
        starts: (W,) start rows of the windows to serve.
        lookback: T; horizon: F.
        batch_size: windows per batch.
    """

    def __init__(
        self, inputs: np.ndarray, targets: np.ndarray, starts: np.ndarray, lookback: int, horizon: int,
        batch_size: int,
    ) -> None:
        self.inputs = torch.as_tensor(np.ascontiguousarray(inputs), dtype=torch.float32)    # (T, I)
        self.targets = torch.as_tensor(np.ascontiguousarray(targets), dtype=torch.float32)  # (T, K)
        self.starts = torch.as_tensor(np.asarray(starts), dtype=torch.long)                  # (W,)
        self.lookback, self.horizon, self.batch_size = lookback, horizon, batch_size

    def __len__(self) -> int:
        """Batches per epoch."""
        return (len(self.starts) + self.batch_size - 1) // self.batch_size

    def batch(self, starts: Tensor) -> Batch:
        """inputs (B, T, I) and targets (B, F, K) of the windows starting at ``starts`` (B,)."""
        rows_in = starts[:, None] + torch.arange(self.lookback)                         # (B, T)
        rows_out = starts[:, None] + self.lookback + torch.arange(self.horizon)         # (B, F)
        return Batch(self.inputs[rows_in], self.targets[rows_out])

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """Every window once, shuffled by ``generator``."""
        order = self.starts[torch.randperm(len(self.starts), generator=generator)]
        for i in range(0, len(order), self.batch_size):
            yield self.batch(order[i : i + self.batch_size])

    def in_order(self) -> Iterator[Batch]:
        """Every window once, in time order (for evaluation and prediction)."""
        for i in range(0, len(self.starts), self.batch_size):
            yield self.batch(self.starts[i : i + self.batch_size])

    def target_windows(self) -> np.ndarray:
        """The true targets of every window, (W, F, K)."""
        rows = self.starts[:, None] + self.lookback + torch.arange(self.horizon)
        return self.targets[rows].numpy()

    def input_windows(self) -> np.ndarray:
        """The inputs of every window, (W, T, I)."""
        rows = self.starts[:, None] + torch.arange(self.lookback)
        return self.inputs[rows].numpy()
