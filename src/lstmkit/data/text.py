"""Language-model streams over encoded text: shuffled windows for training, contiguous streams for evaluation."""

from collections.abc import Iterator

import torch
from torch import Tensor

from .batch import Batch


def split_tail(text: str, val_fraction: float) -> tuple[str, str]:
    """Splits text into a training head and a contiguous validation tail of ``val_fraction`` of its characters."""
    cut = len(text) - max(1, round(len(text) * val_fraction))
    return text[:cut], text[cut:]


class LMWindows:
    """Training batches of next-token windows, reshuffled every epoch.

    Each epoch starts at a random offset within the ids left over after the windows (so window borders move
    between epochs), cuts non-overlapping windows of seq_len + 1 ids, shuffles them and yields batches with
    inputs = window[:-1], targets = window[1:], both (B, seq_len).
    """

    def __init__(self, ids: Tensor, seq_len: int, batch_size: int) -> None:
        self.ids, self.seq_len, self.batch_size = ids, seq_len, batch_size
        self.num_windows = (len(ids) - 1) // seq_len

    def __len__(self) -> int:
        return -(-self.num_windows // self.batch_size)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        spare = len(self.ids) - 1 - self.num_windows * self.seq_len
        offset = int(torch.randint(0, spare + 1, (1,), generator=generator))
        starts = offset + self.seq_len * torch.randperm(self.num_windows, generator=generator)  # (N,)
        span = torch.arange(self.seq_len + 1)                                                     # (T+1,)
        for first in range(0, self.num_windows, self.batch_size):
            windows = self.ids[starts[first : first + self.batch_size, None] + span]            # (B, T+1)
            yield Batch(windows[:, :-1], windows[:, 1:])


def lm_streams(ids: Tensor, num_streams: int, seq_len: int) -> Iterator[Batch]:
    """Evaluation batches over contiguous streams, for state carried from one batch to the next.

    The ids are cut into ``num_streams`` equal contiguous streams (a column each, as pytorch/examples'
    batchify), then read ``seq_len`` steps at a time::

        ids: a b c d e f g h i j k l m      num_streams=2, seq_len=3
        stream 0: a b c d e f               batch 1: inputs [a b c] [g h i], targets [b c d] [h i j]
        stream 1: g h i j k l               batch 2: inputs [d e]   [j k],   targets [e f]   [k l]
    """
    per_stream = (len(ids) - 1) // num_streams
    inputs = ids[: per_stream * num_streams].view(num_streams, per_stream)                    # (B, N)
    targets = ids[1 : per_stream * num_streams + 1].view(num_streams, per_stream)             # (B, N)
    for start in range(0, per_stream, seq_len):
        yield Batch(inputs[:, start : start + seq_len], targets[:, start : start + seq_len])
