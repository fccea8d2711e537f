"""The fused backend: the LSTM recurrence in compiled code, with every feature torch.nn.LSTM lacks.

Per layer and direction: the input projection of all steps is one matrix product here (so is the weight
gradient that autograd derives from it); the recurrence, forward and backward, is one call into the C++
extension (csrc/fused_lstm.cpp), which runs per step the recurrent product and one fused pass of gate
maths with recurrent dropout, zoneout, layer norms and padding. Gate traces come for free: the forward
keeps the activations for the backward anyway.

Runs: LSTM on the CPU, every feature but projections; the recurrence in float32 (under bf16 autocast the
input projections run in bfloat16). The extension is built on first use
(backends/extension.py); when it cannot be, this backend says so and "auto" moves on.
"""

import torch
from torch import Tensor

from ..core.step import CellWeights, layer_norm
from . import extension, masks
from .spec import StackSpec

NAME = "fused"


def unsupported(spec: StackSpec, *, device: torch.device, training: bool) -> str | None:
    """Why the fused backend cannot run the configuration, or None."""
    if spec.mode != "lstm":
        return "the fused backend runs LSTM layers only"
    if spec.proj_size > 0:
        return "the fused backend has no projection (proj_size)"
    if device.type != "cpu":
        return "the fused backend's compiled kernels run on the CPU"
    return extension.unavailable_reason()


class _Recurrence(torch.autograd.Function):
    """One layer and direction: (xproj, h0, c0, W_hh and the layer-norm gains) -> (y, h_T, c_T, traces)."""

    @staticmethod
    def forward(
        ctx, xproj, h0, c0, w_hh, ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_p, lengths, reverse, traced
    ):
        ext = extension.load()
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradients
        keep_c_p, keep_h_p = keep_p
        out = ext.layer_forward(
            xproj, h0, c0, w_hh, ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_c_p, keep_h_p, lengths, reverse
        )
        y, h_T, c_T, gates, c_prev, h_rec, tanh_c, c_hat, rstd_c, gh_hat, rstd_hh, c_out = out
        ctx.save_for_backward(
            w_hh, gates, c_prev, h_rec, tanh_c, c_hat, rstd_c, gh_hat, rstd_hh,
            ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths,
        )
        ctx.keep_p, ctx.reverse = keep_p, reverse
        if not traced:
            return y, h_T, c_T
        ctx.mark_non_differentiable(gates, c_out)
        return y, h_T, c_T, gates, c_out

    @staticmethod
    def backward(ctx, dy, dh_T, dc_T, *_traces):
        ext = extension.load()
        (w_hh, gates, c_prev, h_rec, tanh_c, c_hat, rstd_c, gh_hat, rstd_hh,
         ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths) = ctx.saved_tensors
        keep_c_p, keep_h_p = ctx.keep_p
        grads = ext.layer_backward(
            _dense(dy, c_prev), _dense(dh_T, c_prev[0]), _dense(dc_T, c_prev[0]), w_hh, gates, c_prev, h_rec,
            tanh_c, c_hat, rstd_c, gh_hat, rstd_hh, ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h,
            keep_c_p, keep_h_p, lengths, ctx.reverse,
        )
        dxproj, dh0, dc0, dw_hh, dln_hh, dln_c_w, dln_c_b = grads
        if ln_hh is None:
            dln_hh = dln_c_w = dln_c_b = None
        return dxproj, dh0, dc0, dw_hh, dln_hh, dln_c_w, dln_c_b, None, None, None, None, None, None, None


def _dense(grad: Tensor | None, like: Tensor) -> Tensor:
    """Autograd passes None for outputs that did not reach the loss; the kernel wants zeros."""
    return torch.zeros_like(like) if grad is None else grad.contiguous()


def _input_projection(x_tm: Tensor, w: CellWeights) -> Tensor:
    """W_ih x_t + biases for every step at once: x_tm (T, B, I) -> (T, B, 4H), one matrix product."""
    steps, batch, features = x_tm.shape
    flat = x_tm.reshape(steps * batch, features)
    if w.ln_ih is not None:
        proj = layer_norm(flat @ w.w_ih.T, w.ln_ih)
        if w.b_ih is not None:
            proj = proj + (w.b_ih + w.b_hh)
    elif w.b_ih is not None:
        proj = torch.addmm(w.b_ih + w.b_hh, flat, w.w_ih.T)
    else:
        proj = flat @ w.w_ih.T
    return proj.view(steps, batch, -1)


def run(
    spec: StackSpec,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: list[CellWeights],
    lengths: Tensor | None,
    training: bool,
    trace: dict[str, list[Tensor]] | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as backends.reference.run, traces included."""
    batch, steps, _ = x.shape
    if lengths is not None:
        lengths = lengths.to(device=x.device, dtype=torch.int64).contiguous()
    h0_all, c0_all = state
    layer_input = x.transpose(0, 1)                                              # (T, B, I), time-major
    finals: list[tuple[Tensor, Tensor]] = []
    for layer in range(spec.num_layers):
        outputs = []
        for direction in range(spec.num_directions):
            idx = layer * spec.num_directions + direction
            w = weights[idx]
            rec_mask, zoneout = masks.draw(spec, batch, steps, x, training)
            keep_c = keep_h = None
            keep_p = (0.0, 0.0)
            if zoneout is not None and isinstance(zoneout.keep_c, Tensor):
                keep_c, keep_h = zoneout.keep_c.contiguous(), zoneout.keep_h.contiguous()
            elif zoneout is not None:
                keep_p = (float(zoneout.keep_c), float(zoneout.keep_h))
            # (T, B, 4H); under bf16 autocast the product ran in bfloat16, the recurrence runs in float32
            xproj = _input_projection(layer_input, w).float().contiguous()
            y, h_T, c_T, *traced = _Recurrence.apply(
                xproj, h0_all[idx].contiguous(), c0_all[idx].contiguous(), w.w_hh.contiguous(),
                w.ln_hh, w.ln_c_w, w.ln_c_b, rec_mask, keep_c, keep_h, keep_p, lengths, direction == 1,
                trace is not None,
            )
            if trace is not None:
                gates, c_out = traced
                for k, name in enumerate(("i", "f", "g", "o")):
                    trace[name].append(gates.unflatten(-1, (4, -1))[..., k, :].transpose(0, 1))  # (B, T, H)
                trace["c"].append(c_out.transpose(0, 1))
            outputs.append(y)                                                    # (T, B, H)
            finals.append((h_T, c_T))
        layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)  # (T, B, D*H)
        if training and spec.dropout > 0 and layer < spec.num_layers - 1:
            shape = (batch, steps, layer_input.shape[-1])
            layer_input = layer_input * masks.layer_dropout(spec, shape, x).transpose(0, 1)
    h_n = torch.stack([f[0] for f in finals])                                    # (L*D, B, H)
    c_n = torch.stack([f[1] for f in finals])
    return layer_input.transpose(0, 1).contiguous(), (h_n, c_n)


def step_unsupported(spec: StackSpec, x: Tensor, training: bool) -> str | None:
    """Why ``step`` cannot run this stack one step at a time, or None."""
    reason = unsupported(spec, device=x.device, training=training)
    if reason is None and (training or torch.is_grad_enabled()):
        reason = "stepwise inference runs without gradients, in evaluation mode"
    if reason is None and (spec.bidirectional or spec.layer_norm or x.dtype != torch.float32):
        reason = "stepwise inference runs unidirectional float32 stacks without layer norm"
    return reason


def step(spec: StackSpec, x: Tensor, state: tuple[Tensor, ...], weights: list[CellWeights]) -> tuple[Tensor, ...]:
    """One step of the whole stack in one call: x (B, I), state (h, c) each (L, B, H) -> the new (h, c)."""
    ext = extension.load()
    w_ih = [w.w_ih.contiguous() for w in weights]
    w_hh = [w.w_hh.contiguous() for w in weights]
    empty = x.new_empty(0)
    bias = [empty if w.b_ih is None else (w.b_ih + w.b_hh) for w in weights]
    h, c = state
    h_new, c_new = ext.stack_step(x.contiguous(), h.contiguous(), c.contiguous(), w_ih, w_hh, bias, spec.zoneout)
    return h_new, c_new
