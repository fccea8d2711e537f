"""Synthetic long-range memory tasks: the adding problem and the copy task, drawn from a torch.Generator.

Owns the data only; models, objectives and the runner live beside it in experiment/.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..data.batch import Batch
from ..errors import LstmkitError

COPY_SYMBOLS = 8   # symbols 1..8 to remember; 0 is the blank, 9 the "recall now" delimiter
COPY_SPAN = 10     # how many symbols are shown and then recalled
MEMORY_TASKS = ("adding", "copy")


def adding_problem(n: int, length: int, generator: torch.Generator) -> Batch:
    """The adding problem of Hochreiter & Schmidhuber (1997), in the form of Le et al. (2015).

    Each step carries a value drawn uniformly from [0, 1] and a marker; exactly two steps are marked, one in
    the first half and one in the second half of the sequence, and the target is the sum of the two marked
    values. Answering the expected sum 1 always has MSE Var(U1 + U2) = 2/12 = 0.1667.

    Args:
        n: B, sequences to draw.
        length: T, steps per sequence (at least 2).
        generator: the random source.

    Returns:
        Batch with inputs (B, T, 2) = (value, marker) and targets (B,) the sums.
    """
    if length < 2:
        raise LstmkitError(f"the adding problem needs sequences of at least 2 steps, got {length}")
    values = torch.rand(n, length, generator=generator)                            # (B, T)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)                      # (B,)
    second = torch.randint(half, length, (n,), generator=generator)                # (B,)
    markers = torch.zeros(n, length)                                               # (B, T)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]                           # (B,)
    return Batch(torch.stack([values, markers], dim=-1), targets)                  # (B, T, 2), (B,)


def copy_task(n: int, length: int, generator: torch.Generator) -> Batch:
    """The copy task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): remember 10 symbols across a delay.

    A sequence is ``COPY_SPAN`` random symbols from 1..8, then ``length`` blanks (0) of which the last is the
    delimiter 9, then ``COPY_SPAN`` blanks during which the model must output the symbols in order. Guessing
    scores an accuracy of 1/8.

    Args:
        n: B, sequences to draw.
        length: the delay between the last symbol shown and the delimiter, in steps (at least 1).
        generator: the random source.

    Returns:
        Batch with inputs (B, T) token ids, T = length + 2 * COPY_SPAN, and targets (B, COPY_SPAN) the symbols
        to output over the last COPY_SPAN steps.
    """
    if length < 1:
        raise LstmkitError(f"the copy task needs a delay of at least 1 step, got {length}")
    symbols = torch.randint(1, COPY_SYMBOLS + 1, (n, COPY_SPAN), generator=generator)  # (B, S)
    inputs = torch.zeros(n, length + 2 * COPY_SPAN, dtype=torch.long)                  # (B, T)
    inputs[:, :COPY_SPAN] = symbols
    inputs[:, COPY_SPAN + length - 1] = COPY_SYMBOLS + 1
    return Batch(inputs, symbols)


GENERATORS = {"adding": adding_problem, "copy": copy_task}


def make_batch(task: str, n: int, length: int, generator: torch.Generator) -> Batch:
    """A batch of ``task`` ("adding" or "copy"); see adding_problem and copy_task."""
    if task not in GENERATORS:
        raise LstmkitError(f"task must be one of {', '.join(MEMORY_TASKS)}, got {task!r}")
    return GENERATORS[task](n, length, generator)


@dataclass
class FreshBatches:
    """An EpochSource that draws ``batches`` new batches every epoch: the training set never repeats."""

    task: str
    length: int
    batch_size: int
    batches: int

    def __len__(self) -> int:
        return self.batches

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        for _ in range(self.batches):
            yield make_batch(self.task, self.batch_size, self.length, generator)
