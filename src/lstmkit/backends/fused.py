"""The fused backend: the LSTM recurrence in compiled code, with every feature torch.nn.LSTM lacks.

The whole stack is one autograd node. In the common case (one direction; no recurrent dropout, zoneout,
padding or traces) that node is built in C++ (stack_forward), so that neither its forward nor its backward
returns to Python between layers; otherwise it is _Stack here. Either way, per layer and direction the
forward and the backward are one call each into the C++ extension (csrc/fused_lstm.cpp and the lstm_*.h
headers it includes): per step the recurrent product (by the extension's own register-blocked kernels, in
float32 or bfloat16) and one fused
pass of gate maths with recurrent dropout, zoneout, layer norms and padding; the input projection, and in
the backward the weight gradients, as one matrix product each over all steps (larger layers) or step by
step inside the time loop while the rows are in cache (small layers, where the BLAS is slow on such skinny
products; and inference on many rows, which then writes no all-step buffers). The random masks are drawn
here, before, in the reference's order. Gate traces come for free: the forward keeps the activations for
the backward anyway (and without gradients or traces keeps none).

Runs: LSTM on the CPU, every feature but projections, in float32. Under bf16 autocast the matrix products
of larger layers run in bfloat16 with float32 accumulation (the input projections and weight gradients of
layers not small enough for the in-loop path; the recurrent products past 4H x H > 65,536 weights); small
layers, the gate maths and the state stay float32. The extension is built on first use
(backends/extension.py); when it cannot be, this backend says so and "auto" moves on.
"""

from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor

from ..core.step import CellWeights
from . import extension, masks
from .spec import StackSpec

NAME = "fused"
MODES = ("lstm",)
FEATURES = frozenset({"bias", "dropout", "bidirectional", "recurrent_dropout", "zoneout", "layer_norm"})
PURPOSES = frozenset({"run", "trace", "step", "generate"})


def unsupported(
    spec: StackSpec, *, device: torch.device, dtype: torch.dtype, training: bool, purpose: str
) -> str | None:
    """Why the fused backend cannot serve ``purpose`` beyond what MODES and FEATURES say, or None."""
    if device.type != "cpu":
        return "the fused backend's compiled kernels run on the CPU"
    if dtype != torch.float32:
        return f"the fused backend's kernels take float32 parameters, not {str(dtype).removeprefix('torch.')}"
    reason = extension.unavailable_reason()
    if reason is None and purpose in ("step", "generate"):
        # the one-step kernels keep nothing for a backward and draw no masks
        if training or torch.is_grad_enabled():
            reason = "stepwise inference runs without gradients, in evaluation mode"
        elif spec.bidirectional or spec.layer_norm:
            reason = "stepwise inference runs unidirectional stacks without layer norm"
    return reason


PARAMS = ("w_ih", "w_hh", "b_ih", "b_hh", "ln_ih", "ln_hh", "ln_c_w", "ln_c_b")  # per layer and direction
SAVED = ("y_tm", "gates", "c_all", "xhat_ih", "rstd_ih", "gh_hat", "rstd_hh", "c_hat", "rstd_c")  # from the forward
P, S = len(PARAMS), len(SAVED)


class _Setup(NamedTuple):
    """What one run of the stack needs besides tensors that take gradients: masks are drawn before."""

    spec: StackSpec
    cell_masks: list[tuple[Tensor | None, Tensor | None, Tensor | None, tuple[float, float]]]  # rec, keep_c, keep_h
    layer_masks: list[Tensor | None]  # dropout on each layer's output (B, T, D*H), None for the last
    lengths: Tensor | None
    bf16: bool     # matrix products in bfloat16 (training under CPU autocast), see the module docstring
    traced: bool   # also return the gates and cell states
    save: bool     # keep what a backward needs (the gates and cell states of every step)


def _without_autocast():
    """The extension's calls take and give float32 tensors: autocast off around them, when it is on."""
    return torch.autocast("cpu", enabled=False) if torch.is_autocast_enabled("cpu") else nullcontext()


class _Stack(torch.autograd.Function):
    """The whole stack as one autograd node: (x, h0, c0, parameters) -> (y, h_n, c_n[, traces]).

    Per layer and direction the forward and the backward are one call into the extension each, with no
    autograd bookkeeping in between."""

    @staticmethod
    def forward(ctx, setup: _Setup, x: Tensor, h0: Tensor, c0: Tensor, *params: Tensor | None):
        ext = extension.load()
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradients
        spec, dirs = setup.spec, setup.spec.num_directions
        empty = x.new_empty(0)
        layer_input, inputs, saved, finals, traces = x, [], [], [], []
        with _without_autocast():
            for layer in range(spec.num_layers):
                inputs.append(layer_input)
                outputs = []
                for direction in range(dirs):
                    idx = layer * dirs + direction
                    w_ih, w_hh, b_ih, b_hh, ln_ih, ln_hh, ln_c_w, ln_c_b = params[idx * P : idx * P + P]
                    bias = empty if b_ih is None else b_ih + b_hh
                    rec, keep_c, keep_h, (keep_c_p, keep_h_p) = setup.cell_masks[idx]
                    y, h_T, c_T, *rest = ext.layer_forward(
                        layer_input, h0[idx], c0[idx], w_ih, w_hh, bias, ln_ih, ln_hh, ln_c_w, ln_c_b,
                        rec, keep_c, keep_h, keep_c_p, keep_h_p, setup.lengths, direction == 1, setup.bf16,
                        setup.save,
                    )
                    saved += rest
                    finals.append((h_T, c_T))
                    outputs.append(y)                                                # (B, T, H)
                    if setup.traced:
                        traces += rest[1:3]                                          # gates, c_all (T, B, .)
                layer_input = outputs[0] if dirs == 1 else torch.cat(outputs, dim=-1)  # (B, T, D*H)
                if setup.layer_masks[layer] is not None:
                    layer_input = layer_input * setup.layer_masks[layer]
        ctx.save_for_backward(h0, c0, *params, *inputs, *saved)
        ctx.setup = setup
        h_n = torch.stack([f[0] for f in finals])                                    # (L*D, B, H)
        c_n = torch.stack([f[1] for f in finals])
        if traces:
            ctx.mark_non_differentiable(*traces)
        return (layer_input, h_n, c_n, *traces)

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n, *_traces):
        ext = extension.load()
        setup = ctx.setup
        spec, dirs = setup.spec, setup.spec.num_directions
        layers, cells = spec.num_layers, spec.num_layers * setup.spec.num_directions
        h0, c0, *rest = ctx.saved_tensors
        params, rest = rest[: P * cells], rest[P * cells :]
        inputs, saved = rest[:layers], rest[layers:]
        hidden = spec.hidden_size
        if dy is None:
            dy = h0.new_zeros(*inputs[0].shape[:2], dirs * hidden)
        if dh_n is None:
            dh_n = torch.zeros_like(h0)
        if dc_n is None:
            dc_n = torch.zeros_like(c0)
        grads: list[Tensor | None] = [None] * len(params)
        dh0, dc0 = [None] * cells, [None] * cells
        with _without_autocast():
            for layer in reversed(range(layers)):
                need_dx = layer > 0 or ctx.needs_input_grad[1]
                dx = None
                for direction in range(dirs):
                    idx = layer * dirs + direction
                    w = params[idx * P : idx * P + P]
                    rec, keep_c, keep_h, (keep_c_p, keep_h_p) = setup.cell_masks[idx]
                    dy_cell = dy if dirs == 1 else dy[..., direction * hidden : (direction + 1) * hidden]
                    out = ext.layer_backward(
                        dy_cell, dh_n[idx].contiguous(), dc_n[idx].contiguous(), inputs[layer],
                        h0[idx], c0[idx], w[0], w[1], *saved[idx * S : idx * S + S], *w[4:],
                        rec, keep_c, keep_h, keep_c_p, keep_h_p, setup.lengths, direction == 1, setup.bf16, need_dx,
                    )
                    d_in, dh0[idx], dc0[idx], dw_ih, dw_hh, dbias, *dln = out
                    present = [dw_ih, dw_hh, dbias, dbias, *dln]
                    for k in range(P):
                        if w[k] is not None:
                            grads[idx * P + k] = present[k]
                    if need_dx:
                        dx = d_in if dx is None else dx + d_in
                if layer > 0:
                    mask = setup.layer_masks[layer - 1]
                    dy = dx if mask is None else dx * mask                           # (B, T, D*H) below
        dh0_all = torch.stack(dh0) if ctx.needs_input_grad[2] else None
        dc0_all = torch.stack(dc0) if ctx.needs_input_grad[3] else None
        return None, dx, dh0_all, dc0_all, *grads


def run(
    spec: StackSpec,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: list[CellWeights],
    lengths: Tensor | None,
    training: bool,
    trace: dict[str, list[Tensor]] | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as backends.reference.run, traces included; float32 parameters (``unsupported`` refuses
    others)."""
    params = [None if p is None else p.contiguous() for w in weights for p in (getattr(w, n) for n in PARAMS)]
    batch, steps, _ = x.shape
    bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    h0, c0 = (s.float().contiguous() for s in state)
    # without gradients (inference) the forward keeps nothing for a backward: neither the gates nor the cell
    # states of every step are written out, two all-step buffers that large batches would only fill and
    # drop; traces read them, though
    grads = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, h0, c0, *params))
    save = grads or trace is not None
    per_step_masks = spec.zoneout > 0 or (training and spec.recurrent_dropout > 0)
    if trace is None and lengths is None and spec.num_directions == 1 and not per_step_masks:
        return _run_stack(spec, x, h0, c0, [p for p in params if p is not None], training, bf16, save)
    if lengths is not None:
        lengths = lengths.to(device=x.device, dtype=torch.int64).contiguous()
    # every random mask, in the order the reference draws them: per cell, then below each upper layer
    cell_masks, layer_masks = [], []
    for layer in range(spec.num_layers):
        for _ in range(spec.num_directions):
            rec_mask, keep_c, keep_h, keep_p = masks.for_kernel(spec, batch, steps, x, training)
            cell_masks.append((rec_mask, keep_c, keep_h, keep_p or (0.0, 0.0)))
        below = training and spec.dropout > 0 and layer < spec.num_layers - 1
        shape = (batch, steps, spec.num_directions * spec.hidden_size)
        layer_masks.append(masks.layer_dropout(spec, shape, x) if below else None)
    setup = _Setup(spec, cell_masks, layer_masks, lengths, bf16, trace is not None, save)
    y, h_n, c_n, *traced = _Stack.apply(setup, x.float().contiguous(), h0, c0, *params)
    if trace is not None:
        valid = None if lengths is None else (torch.arange(steps, device=x.device) < lengths[:, None])[..., None]
        for gates, c_all in zip(traced[0::2], traced[1::2], strict=True):                 # time-major
            for k, name in enumerate(("i", "f", "g", "o")):
                trace[name].append(gates.unflatten(-1, (4, -1))[..., k, :].transpose(0, 1))  # (B, T, H)
            c = c_all.transpose(0, 1)
            trace["c"].append(c if valid is None else c * valid)                  # 0 on padded steps
    return y, (h_n, c_n)


def _run_stack(
    spec: StackSpec, x: Tensor, h0: Tensor, c0: Tensor, params: list[Tensor], training: bool, bf16: bool,
    save: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The common case (one direction, no per-step masks, no padding, no traces) as one autograd node built
    in C++ (stack_forward): forward and backward run with no Python between layers or steps."""
    masks_below = []
    if training and spec.dropout > 0:
        shape = (x.shape[0], x.shape[1], spec.hidden_size)
        masks_below = [masks.layer_dropout(spec, shape, x) for _ in range(spec.num_layers - 1)]
    with _without_autocast():
        y, h_n, c_n = extension.load().stack_forward(
            x.float().contiguous(), h0, c0, params, masks_below, spec.bias, spec.layer_norm, bf16, save
        )
    return y, (h_n, c_n)


def _stack_weights(weights: list[CellWeights], like: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per layer W_ih, W_hh and the summed bias (an empty tensor without biases), as the one-call inference
    kernels take them."""
    empty = like.new_empty(0)
    w_ih = [w.w_ih.contiguous() for w in weights]
    w_hh = [w.w_hh.contiguous() for w in weights]
    return w_ih, w_hh, [empty if w.b_ih is None else (w.b_ih + w.b_hh) for w in weights]


def step(spec: StackSpec, x: Tensor, state: tuple[Tensor, ...], weights: list[CellWeights]) -> tuple[Tensor, ...]:
    """One step of the whole stack in one call: x (B, I), state (h, c) each (L, B, H) -> the new (h, c)."""
    h, c = state
    h_new, c_new = extension.load().stack_step(
        x.float().contiguous(), h.contiguous(), c.contiguous(), *_stack_weights(weights, x), spec.zoneout
    )
    return h_new, c_new


def sample(
    spec: StackSpec,
    weights: list[CellWeights],
    state: tuple[Tensor, Tensor],
    embedding: Tensor,
    head: tuple[Tensor, Tensor | None],
    logits: Tensor,
    uniforms: Tensor,
    rule: tuple[float, int, int],
) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
    """Generation at batch 1 in one call (nn/sampling.py says what is generated): state (h, c) each
    (L, 1, H); embedding (V_in, E); head (W (V, H), b (V)); logits (V); uniforms (n); rule (temperature,
    top_k or 0, banned id or -1). Returns the n ids, the state after them and the logits that follow."""
    head_w, head_b = head
    h, c = state
    ids, h_n, c_n, last = extension.load().sample_chain(
        logits.float().contiguous(), h.contiguous(), c.contiguous(), embedding.contiguous(),
        *_stack_weights(weights, logits), head_w.contiguous(), logits.new_empty(0) if head_b is None else head_b,
        uniforms.float().contiguous(), *rule, spec.zoneout,
    )
    return ids, (h_n, c_n), last
