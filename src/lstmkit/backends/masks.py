"""The random masks of the regularised recurrences, drawn in one place so that every backend draws the
same numbers from the same seed: per layer and direction, the recurrent-dropout mask, then the zoneout
masks of c and of h; and the dropout masks between layers.

The draws are counter-based: element i of a mask is `scale` when h(i) < threshold and 0 otherwise, with
threshold = round(p * 2^32) and, in 32-bit unsigned arithmetic,

    h(i) = mix(mix(i ^ key0) ^ key1)
    mix(x): x ^= x >> 17; x *= 0xED5AD4BB; x ^= x >> 11; x *= 0xAC4C1B51; x ^= x >> 15; x *= 0x31848BAB; x ^= x >> 14

(mix is a bijective integer hash). The two 32-bit keys of each mask are drawn from torch's CPU generator, so
torch.manual_seed fixes every mask. Each element depends on its index and the keys alone, so the compiled
extension (random.cpp) draws a mask on all threads with vector instructions, the same bits for any thread
count (torch.bernoulli draws one element after another on the CPU, a cost every training step pays for its
inter-layer masks). Without the extension, or on a GPU, the same function runs as the
torch operations below, with the same result to the bit (tests/backends/test_masks.py).
"""

import torch
from torch import Tensor

from ..core.step import Zoneout
from . import extension
from .spec import StackSpec

_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """x * c modulo 2^32 for x in [0, 2^32) held as int64, in two halves so that no product overflows."""
    return (x * (c & 0xFFFF) + ((x * (c >> 16)) << 16)) & _M32


def _mix(x: Tensor) -> Tensor:
    x = x ^ (x >> 17)
    x = _mul32(x, 0xED5AD4BB)
    x = x ^ (x >> 11)
    x = _mul32(x, 0xAC4C1B51)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x31848BAB)
    return x ^ (x >> 14)


def hashed_bernoulli(n: int, threshold: int, scale: float, key0: int, key1: int, device: torch.device) -> Tensor:
    """The n draws of one mask (float32, `scale` or 0) in torch operations: the reference for random.cpp."""
    i = torch.arange(n, dtype=torch.int64, device=device)
    h = _mix(_mix(i ^ key0) ^ key1)
    value = torch.tensor(scale, dtype=torch.float32, device=device)
    return torch.where(h < threshold, value, torch.zeros((), dtype=torch.float32, device=device))


def bernoulli(shape: tuple[int, ...], p: float, like: Tensor, scale: float = 1.0) -> Tensor:
    """Independent draws, `scale` with probability p and 0 otherwise, of `shape`, on like's device and dtype."""
    n = 1
    for size in shape:
        n *= size
    if n > 2**32:
        raise ValueError(f"a mask of {n} elements is more than the 2^32 its random draws can index")
    key0, key1 = (int(k) for k in torch.randint(0, 2**32, (2,), dtype=torch.int64))
    threshold = min(2**32, round(p * 2**32))
    module = extension.loaded() if like.device.type == "cpu" else None
    if module is not None:
        draws = module.bernoulli_mask(n, threshold, scale, key0, key1)
    else:
        draws = hashed_bernoulli(n, threshold, scale, key0, key1, like.device)
    return draws.view(shape).to(like.dtype)


def recurrent_mask(spec: StackSpec, batch: int, like: Tensor, training: bool) -> Tensor | None:
    """Variational dropout mask on h_prev, one per sequence, (B, H or P), scaled by 1 / keep; or None."""
    if not training or spec.recurrent_dropout == 0.0:
        return None
    keep = 1.0 - spec.recurrent_dropout
    return bernoulli((batch, spec.output_size), keep, like, scale=1.0 / keep)


def zoneout_masks(spec: StackSpec, batch: int, steps: int, like: Tensor, training: bool) -> Zoneout | None:
    """Per-step zoneout masks (1 = keep the previous value), keep_c (T, B, H) and keep_h (T, B, H or P)
    while training; the keep probability itself in evaluation; None without zoneout."""
    if spec.zoneout == 0.0:
        return None
    if not training:
        return Zoneout(spec.zoneout, spec.zoneout)
    keep_c = bernoulli((steps, batch, spec.hidden_size), spec.zoneout, like)
    keep_h = bernoulli((steps, batch, spec.output_size), spec.zoneout, like)
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
    return bernoulli(shape, keep, like, scale=1.0 / keep if keep > 0 else 0.0)  # dropout=1 drops everything
