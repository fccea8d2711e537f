"""TextClassifier: embedding -> (bi)LSTM stack -> masked pooling over time -> dropout -> linear head.

Pooling never sees padded positions: ``last`` takes each text's own final state (the LSTM honours
``lengths``), ``max``/``mean`` ignore the padded steps, and ``attention`` gives them zero weight. The head
returns logits: one per text for two classes (sigmoid), C for more (softmax); probabilities are the task's
business.
"""

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..nn import LSTMState
from .encoder import SequenceEncoder

POOLINGS = ("last", "max", "mean", "attention")


def mask_of(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) True at real steps, False at padding."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]   # (B, T)


class AttentionPool(nn.Module):
    """Additive attention over time: score_t = v . tanh(W y_t), weights = softmax over the real steps."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.project = nn.Linear(input_size, input_size)
        self.score = nn.Linear(input_size, 1, bias=False)

    def forward(self, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """y (B, T, F), mask (B, T) -> pooled (B, F) and weights (B, T), zero on padding."""
        scores = self.score(torch.tanh(self.project(y))).squeeze(-1)       # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, -torch.inf), dim=-1)  # (B, T)
        return torch.einsum("bt,btf->bf", weights, y), weights              # (B, F), (B, T)


class TextClassifier(nn.Module):
    """Classifies token-id sequences.

    Args:
        config: backbone settings; ``config.pooling`` picks last | max | mean | attention, ``config.dropout``
            drops embeddings and the pooled features (and applies between stacked layers).
        vocab_size: V, the number of token ids (padding id 0 included).
        num_classes: C >= 2; two classes get a single logit.

    Example:
        >>> model = TextClassifier(ModelConfig(bidirectional=True, pooling="max"), vocab_size=1000, num_classes=2)
        >>> logits = model(torch.randint(1, 1000, (4, 12)), torch.tensor([12, 5, 9, 1]))   # (4,)
    """

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        self.pooling = config.pooling
        self.encoder = SequenceEncoder(config, vocab_size=vocab_size)
        self.dropout = nn.Dropout(config.dropout)
        self.attention = AttentionPool(self.encoder.output_size) if config.pooling == "attention" else None
        self.head = nn.Linear(self.encoder.output_size, 1 if num_classes == 2 else num_classes)
        self.num_classes = num_classes
        self.directions = 2 if config.bidirectional else 1

    def _pool(self, y: Tensor, state: LSTMState | Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        mask = mask_of(lengths, y.shape[1])                                  # (B, T)
        if self.pooling == "last":
            h = state.h if isinstance(state, LSTMState) else state          # (L*D, B, H)
            return h[-self.directions :].permute(1, 0, 2).flatten(1), None  # (B, D*H)
        if self.pooling == "max":
            return y.masked_fill(~mask[..., None], -torch.inf).amax(dim=1), None    # (B, F)
        if self.pooling == "mean":
            total = (y * mask[..., None]).sum(dim=1)                                # (B, F)
            return total / lengths[:, None].to(y.dtype), None                       # (B, F)
        return self.attention(y, mask)                                              # (B, F), (B, T)

    def forward_with_weights(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """ids (B, T), lengths (B,) -> logits (B,) or (B, C), and attention weights (B, T) (None unless
        pooling is attention)."""
        lengths = lengths.to(ids.device)
        x = self.dropout(self.encoder.embedding(ids))                       # (B, T, E)
        # a batch without padding needs no lengths: the fused kernels then skip packed sequences
        full = bool((lengths == ids.shape[1]).all())
        y, state = self.encoder.rnn(x, None, None if full else lengths)     # (B, T, D*H)
        pooled, weights = self._pool(y, state, lengths)                     # (B, D*H)
        logits = self.head(self.dropout(pooled))                            # (B, 1) or (B, C)
        return (logits.squeeze(-1) if self.num_classes == 2 else logits), weights

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """ids (B, T), lengths (B,) -> logits (B,) for two classes, (B, C) otherwise."""
        return self.forward_with_weights(ids, lengths)[0]


def build_classifier(config: ModelConfig, vocab_size: int, num_classes: int) -> TextClassifier:
    return TextClassifier(config, vocab_size, num_classes)
