"""The reference backend: a readable Python loop over core.step, one time step at a time.

It supports every feature (masks, both directions, projection, recurrent dropout, zoneout, layer
normalisation, gate traces) and is the oracle the conformance suite holds every other backend to.
It is slow by design.
"""

import torch
from torch import Tensor

from ..core.step import CellWeights, Zoneout, gru_step, lstm_step, rnn_tanh_step
from . import masks
from .spec import StackSpec

NAME = "reference"
MODES = ("lstm", "gru", "rnn")
FEATURES = frozenset({
    "bias", "dropout", "bidirectional", "proj_size", "recurrent_dropout", "zoneout", "layer_norm",
})
PURPOSES = frozenset({"run", "trace"})


def unsupported(
    spec: StackSpec, *, device: torch.device, dtype: torch.dtype, training: bool, purpose: str
) -> str | None:
    """Why this backend cannot run the configuration beyond what MODES and FEATURES say, or None: the
    reference runs every option it declares, on any device and dtype."""
    return None


def _run_direction(
    spec: StackSpec,
    x: Tensor,
    state: tuple[Tensor, ...],
    w: CellWeights,
    mask: Tensor | None,
    reverse: bool,
    training: bool,
    trace: dict[str, list[Tensor]] | None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Runs one layer in one direction. x (B, T, I); state of (B, H or P) [and (B, H)]; mask (B, T) or None."""
    batch, steps, _ = x.shape
    rec_mask, zoneout = masks.draw(spec, batch, steps, x, training)
    ys: list[Tensor | None] = [None] * steps
    gate_steps: list[tuple[Tensor, ...] | None] = [None] * steps
    for t in reversed(range(steps)) if reverse else range(steps):
        if spec.mode == "lstm":
            zone = None
            if zoneout is not None:
                zone = Zoneout(*(k if isinstance(k, float) else k[t] for k in zoneout))
            h, c, gates = lstm_step(x[:, t], state[0], state[1], w, rec_mask, zone)
            new_state: tuple[Tensor, ...] = (h, c)
            gate_steps[t] = (*gates, c)
        elif spec.mode == "gru":
            h = gru_step(x[:, t], state[0], w, rec_mask)
            new_state = (h,)
        else:
            h = rnn_tanh_step(x[:, t], state[0], w, rec_mask)
            new_state = (h,)
        if mask is None:
            state = new_state
            ys[t] = h
        else:
            # padded steps (t >= length) leave the state as it was and output zeros
            valid = mask[:, t, None]                                              # (B, 1)
            state = tuple(torch.where(valid, new, old) for new, old in zip(new_state, state, strict=True))
            ys[t] = torch.where(valid, h, torch.zeros_like(h))
            if gate_steps[t] is not None:
                gate_steps[t] = tuple(torch.where(valid, a, torch.zeros_like(a)) for a in gate_steps[t])
    if trace is not None:
        for k, name in enumerate(("i", "f", "g", "o", "c")):
            trace[name].append(torch.stack([s[k] for s in gate_steps], dim=1))  # (B, T, H)
    return torch.stack(ys, dim=1), state                                          # (B, T, H or P)


def run(
    spec: StackSpec,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: list[CellWeights],
    lengths: Tensor | None,
    training: bool,
    trace: dict[str, list[Tensor]] | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Runs the whole stack.

    Args:
        x: (B, T, I), batch first.
        state: (h0,) or (h0, c0) with h0 (L*D, B, H or P) and c0 (L*D, B, H).
        weights: one CellWeights per layer and direction, index layer * D + direction.
        lengths: (B,) valid steps per sequence, or None when every sequence fills T.
        training: enables dropout between layers and recurrent dropout.
        trace: LSTM only; when given, lists "i", "f", "g", "o", "c" receive one (B, T, H) tensor per
            layer and direction, in weights order.

    Returns:
        y (B, T, D*(H or P)) and the final state in the layout of ``state``.
    """
    _, steps, _ = x.shape
    mask = None
    if lengths is not None:
        mask = torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
    finals: list[tuple[Tensor, ...]] = []
    layer_input = x
    for layer in range(spec.num_layers):
        outputs = []
        for direction in range(spec.num_directions):
            idx = layer * spec.num_directions + direction
            y, final = _run_direction(
                spec,
                layer_input,
                tuple(s[idx] for s in state),
                weights[idx],
                mask,
                reverse=direction == 1,
                training=training,
                trace=trace,
            )
            outputs.append(y)
            finals.append(final)
        layer_input = torch.cat(outputs, dim=-1)                                  # (B, T, D*(H or P))
        if training and spec.dropout > 0 and layer < spec.num_layers - 1:
            layer_input = layer_input * masks.layer_dropout(spec, layer_input.shape, x)
    final_state = tuple(torch.stack([f[k] for f in finals], dim=0) for k in range(len(state)))
    return layer_input, final_state
