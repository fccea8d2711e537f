"""The random masks of the regularised recurrences, drawn in one place so that every backend draws the
same numbers from the same seed: per layer and direction, the recurrent-dropout mask, then the zoneout
masks of c and of h."""

import torch
from torch import Tensor

from ..core.step import Zoneout
from .spec import StackSpec


def recurrent_mask(spec: StackSpec, batch: int, like: Tensor, training: bool) -> Tensor | None:
    """Variational dropout mask on h_prev, one per sequence, (B, H or P), scaled by 1 / keep; or None."""
    if not training or spec.recurrent_dropout == 0.0:
        return None
    keep = 1.0 - spec.recurrent_dropout
    return torch.bernoulli(like.new_full((batch, spec.output_size), keep)) / keep


def zoneout_masks(spec: StackSpec, batch: int, steps: int, like: Tensor, training: bool) -> Zoneout | None:
    """Per-step zoneout masks (1 = keep the previous value), keep_c (T, B, H) and keep_h (T, B, H or P)
    while training; the keep probability itself in evaluation; None without zoneout."""
    if spec.zoneout == 0.0:
        return None
    if not training:
        return Zoneout(spec.zoneout, spec.zoneout)
    keep_c = torch.bernoulli(like.new_full((steps, batch, spec.hidden_size), spec.zoneout))
    keep_h = torch.bernoulli(like.new_full((steps, batch, spec.output_size), spec.zoneout))
    return Zoneout(keep_c, keep_h)


def draw(spec: StackSpec, batch: int, steps: int, like: Tensor, training: bool) -> tuple[Tensor | None, Zoneout | None]:
    """The masks of one layer and direction, in the order every backend draws them."""
    rec = recurrent_mask(spec, batch, like, training)
    return rec, zoneout_masks(spec, batch, steps, like, training)


def for_kernel(
    spec: StackSpec, batch: int, steps: int, like: Tensor, training: bool
) -> tuple[Tensor | None, Tensor | None, Tensor | None, tuple[float, float] | None]:
    """``draw`` as compiled kernels take it, float32 and contiguous: the recurrent-dropout mask (B, H), the
    zoneout masks keep_c, keep_h (T, B, H) while training, and the evaluation-time keep probabilities
    (keep_c, keep_h); None for what is absent (keep probabilities only without zoneout)."""
    rec, zoneout = draw(spec, batch, steps, like, training)
    rec = None if rec is None else rec.float().contiguous()
    if zoneout is None:
        return rec, None, None, None
    if isinstance(zoneout.keep_c, Tensor):
        return rec, zoneout.keep_c.float().contiguous(), zoneout.keep_h.float().contiguous(), (0.0, 0.0)
    return rec, None, None, (float(zoneout.keep_c), float(zoneout.keep_h))


def layer_dropout(spec: StackSpec, shape: tuple[int, int, int], like: Tensor) -> Tensor:
    """Dropout mask, scaled by 1 / keep, on the output (B, T, D*(H or P)) of a layer below another."""
    keep = 1.0 - spec.dropout
    return torch.bernoulli(like.new_full(shape, keep)) / keep
