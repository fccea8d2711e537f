"""TimeDistributed: one module applied to every time step of a sequence (Keras's ``TimeDistributed``), so that
a per-frame network (a CNN over spectrogram slices or video frames) feeds a recurrent layer.

The steps of all sequences are folded into one batch, the module runs once, and the result is unfolded:
(B, T, *S) -> (B * T, *S) -> module -> (B * T, *S') -> (B, T, *S'). Weights are shared across time. With
``lengths``, padded steps are not computed at all (batch statistics of a batch norm inside see real steps
only) and come out as zeros.
"""

import torch
from torch import Tensor, nn


class TimeDistributed(nn.Module):
    """Applies ``module`` to each step of (B, T, ...) inputs.

    Example:
        >>> frames = TimeDistributed(nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        >>> frames(torch.randn(2, 5, 3, 16, 16)).shape        # video clips (B, T, C, H, W)
        torch.Size([2, 5, 8])
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, *S), lengths (B,) or None -> (B, T, *S'); steps at or after a sequence's length are zeros."""
        b, t = x.shape[:2]
        if lengths is None:
            y = self.module(x.reshape(b * t, *x.shape[2:]))                           # (B*T, *S')
            return y.reshape(b, t, *y.shape[1:])                                       # (B, T, *S')
        real = torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
        y = self.module(x[real])                                                       # (R, *S'), R real steps
        out = y.new_zeros(b, t, *y.shape[1:])                                          # (B, T, *S')
        out[real] = y
        return out
