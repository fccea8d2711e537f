"""The memory experiment's model and Objectives: a one-layer recurrent stack read out at the end.

Owns the wiring of SequenceEncoder to a linear read-out and the loss/metrics the engine needs; the data
generators are in data.py, the runner in memory.py.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..data.batch import Batch
from ..models import SequenceEncoder
from .memory_data import COPY_SPAN, COPY_SYMBOLS

EVAL_CHUNK = 500  # sequences per forward pass when evaluating


class MemoryModel(nn.Module):
    """SequenceEncoder + linear read-out.

    For the adding problem: inputs (B, T, 2) -> the predicted sum (B,), read from the last step.
    For the copy task: ids (B, T) -> logits (B, S, C) over the C = 8 symbols at each of the last S steps.
    """

    def __init__(self, config: ModelConfig, task: str) -> None:
        super().__init__()
        self.task = task
        if task == "adding":
            self.encoder = SequenceEncoder(config, input_size=2)
            self.readout = nn.Linear(self.encoder.output_size, 1)
        else:
            self.encoder = SequenceEncoder(config, vocab_size=COPY_SYMBOLS + 2)
            self.readout = nn.Linear(self.encoder.output_size, COPY_SYMBOLS)

    def embed(self, inputs: Tensor) -> Tensor:
        """The recurrent stack's input: features (B, T, I), embedded first for token ids."""
        emb = self.encoder.embedding
        return inputs.float() if emb is None else emb(inputs)           # (B, T, I)

    def from_features(self, x: Tensor) -> Tensor:
        y, _ = self.encoder.rnn(x)                                       # (B, T, H)
        if self.task == "adding":
            return self.readout(y[:, -1]).squeeze(-1)                    # (B,)
        return self.readout(y[:, -COPY_SPAN:])                           # (B, S, C)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.from_features(self.embed(inputs))


class MemoryObjective:
    """Squared error (adding) or cross-entropy on the recalled symbols (copy); metrics on a fixed Batch."""

    def __init__(self, task: str) -> None:
        self.task = task


    def outputs(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.inputs)                                       # (B,) or (B, S, C)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        if self.task == "adding":
            return F.mse_loss(outputs, batch.targets)
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten() - 1)

    def items(self, batch: Batch) -> int:
        return len(batch)

    def evaluate(self, model: nn.Module, data: Batch, device: torch.device) -> dict[str, Any]:
        """{"loss", "mse"} for adding; {"loss", "accuracy"} (share of recalled symbols right) for copy."""
        total, correct = 0.0, 0
        for start in range(0, len(data), EVAL_CHUNK):
            chunk = Batch(data.inputs[start:start + EVAL_CHUNK], data.targets[start:start + EVAL_CHUNK]).to(device)
            out = model(chunk.inputs)
            total += float(self.loss(out, chunk)) * len(chunk)
            if self.task == "copy":
                correct += int((out.argmax(-1) + 1 == chunk.targets).sum())
        loss = total / len(data)
        if self.task == "adding":
            return {"loss": loss, "mse": loss}
        return {"loss": loss, "accuracy": correct / data.targets.numel()}


def input_gradient_norms(model: MemoryModel, batch: Batch, objective: MemoryObjective) -> Tensor:
    """How strongly the loss depends on each step's input: mean over the batch of ||dL/dx_t||, shape (T,).

    x_t is the recurrent stack's input at step t (after the embedding for token ids). The loss is summed over
    the batch, so each sequence's gradient is its own.
    """
    model.eval()
    x = model.embed(batch.inputs).detach().requires_grad_(True)         # (B, T, I)
    with torch.enable_grad():
        out = model.from_features(x)
        loss = objective.loss(out, batch) * len(batch)
        (grad,) = torch.autograd.grad(loss, x)                           # (B, T, I)
    return grad.norm(dim=-1).mean(dim=0).detach()                        # (T,)
