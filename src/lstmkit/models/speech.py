"""SpeechClassifier: the CNN-LSTM for spoken words. The feature sequence (log-mel or MFCC frames) is cut into
overlapping slices of frames; one small CNN, applied to every slice through TimeDistributed, turns each into a
vector; a (bi)LSTM reads the slices in order; its outputs are pooled over time (never over padding) and a linear
head gives one logit per class.

Shape legend: B batch, T frames, M features per frame, S slices, W frames per slice (``slice_frames``), E the
per-slice vector (``embed_dim``), H hidden units, D directions, C classes.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConvFrontConfig, ModelConfig
from ..nn import LSTMState, TimeDistributed
from .classifier import AttentionPool, mask_of
from .encoder import SequenceEncoder


class SliceCNN(nn.Module):
    """One slice (1, W, M) -> (E,): per channel count, a 3x3 convolution, batch norm, ReLU and max-pooling by 2
    along frequency; then the mean over the slice's frames, and a linear map to E features."""

    def __init__(self, config: ConvFrontConfig, n_features: int, out_size: int) -> None:
        super().__init__()
        blocks, channels, size = [], 1, n_features
        for c in config.channels:
            pool = 2 if size >= 2 else 1
            blocks += [nn.Conv2d(channels, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d((1, pool))]
            channels, size = c, size // pool
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Linear(channels * size, out_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, 1, W, M) -> (N, E)."""
        z = self.blocks(x)                                       # (N, C', W, M')
        return F.relu(self.project(z.mean(dim=2).flatten(1)))   # (N, E)


def slice_count(lengths: Tensor, width: int, hop: int) -> Tensor:
    """Slices of ``width`` frames every ``hop`` frames needed to cover ``lengths`` frames: (B,) -> (B,), >= 1."""
    return 1 + torch.clamp(lengths - width, min=0).add(hop - 1).div(hop, rounding_mode="floor")


def to_slices(x: Tensor, width: int, hop: int) -> Tensor:
    """x (B, T, M) -> (B, S, 1, W, M): zero-padded at the end so that the last slice is whole."""
    t = x.shape[1]
    s = 1 + max(0, -(-(t - width) // hop))
    x = F.pad(x, (0, 0, 0, (s - 1) * hop + width - t))          # (B, (S-1)*hop + W, M)
    return x.unfold(1, width, hop).transpose(2, 3).unsqueeze(2).contiguous()  # (B, S, 1, W, M)


class SpeechClassifier(nn.Module):
    """Classifies feature sequences (B, T, M) with true lengths (B,) into C classes.

    Args:
        frontend: the slices and the CNN's channels.
        config: the recurrent backbone (``embed_dim`` is the CNN's output per slice; ``pooling`` last | max |
            mean | attention; ``dropout`` before the LSTM and the head).
        n_features: M, features per frame.
        num_classes: C.
    """

    def __init__(self, frontend: ConvFrontConfig, config: ModelConfig, n_features: int, num_classes: int) -> None:
        super().__init__()
        self.width, self.hop, self.pooling = frontend.slice_frames, frontend.slice_hop, config.pooling
        self.cnn = TimeDistributed(SliceCNN(frontend, n_features, config.embed_dim))
        self.encoder = SequenceEncoder(config, input_size=config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.attention = AttentionPool(self.encoder.output_size) if config.pooling == "attention" else None
        self.head = nn.Linear(self.encoder.output_size, num_classes)
        self.directions = 2 if config.bidirectional else 1

    def _pool(self, y: Tensor, state: LSTMState | Tensor, lengths: Tensor) -> Tensor:
        mask = mask_of(lengths, y.shape[1])                                  # (B, S)
        if self.pooling == "last":
            h = state.h if isinstance(state, LSTMState) else state          # (L*D, B, H)
            return h[-self.directions :].permute(1, 0, 2).flatten(1)        # (B, D*H)
        if self.pooling == "max":
            return y.masked_fill(~mask[..., None], -torch.inf).amax(dim=1)  # (B, D*H)
        if self.pooling == "mean":
            return (y * mask[..., None]).sum(dim=1) / lengths[:, None].to(y.dtype)  # (B, D*H)
        return self.attention(y, mask)[0]                                    # (B, D*H)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, M), lengths (B,) -> logits (B, C)."""
        lengths = slice_count(lengths.to(x.device), self.width, self.hop)   # (B,) slices
        slices = to_slices(x, self.width, self.hop)                          # (B, S, 1, W, M)
        z = self.dropout(self.cnn(slices, lengths))                          # (B, S, E)
        full = bool((lengths == z.shape[1]).all())
        y, state = self.encoder(z, None, None if full else lengths)         # (B, S, D*H)
        return self.head(self.dropout(self._pool(y, state, lengths)))        # (B, C)
