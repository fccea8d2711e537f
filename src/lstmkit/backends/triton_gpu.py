"""The triton backend: the LSTM recurrence on a CUDA device, with the features cuDNN lacks.

Per layer and direction: the input projection of all steps is one matrix product (autograd derives its
gradients); the recurrence is one autograd.Function over the sequence that runs, per step, the recurrent
product h_rec @ W_hh^T with torch.mm and one Triton kernel for the rest of the step (layer norm of that
product, gates, cell, zoneout, layer norm of c, padding, recurrent dropout of the new h), and per step
backwards one Triton kernel and torch.mm; the gradient of W_hh is one product at the end. Masks come from
backends.masks, in the reference's order, so a seed gives the reference's masks. Gate traces come from the
activations the backward keeps anyway.

Runs: LSTM, every feature but projections, on CUDA, in float32 (under bf16 autocast the input projections
run in bfloat16); with TRITON_INTERPRET=1 also on the CPU, through Triton's interpreter (slow; for tests).
triton is imported on first use, not with lstmkit.
"""

import functools
import importlib.util
import os
from types import SimpleNamespace

import torch
from torch import Tensor

from ..core.step import LAYER_NORM_EPS, CellWeights, layer_norm
from . import masks
from .spec import StackSpec

NAME = "triton"
MODES = ("lstm",)
FEATURES = frozenset({"bias", "dropout", "bidirectional", "recurrent_dropout", "zoneout", "layer_norm"})
PURPOSES = frozenset({"run", "trace"})


def interpreted() -> bool:
    """Whether TRITON_INTERPRET asks for Triton's interpreter, which runs kernels on CPU tensors too."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


@functools.cache
def _installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def unsupported(
    spec: StackSpec, *, device: torch.device, dtype: torch.dtype, training: bool, purpose: str
) -> str | None:
    """Why the triton backend cannot run the configuration beyond what MODES and FEATURES say, or None."""
    if device.type != "cuda" and not (device.type == "cpu" and interpreted()):
        return f"the triton backend runs on CUDA devices, not {device.type} (on the CPU only with TRITON_INTERPRET=1)"
    if dtype != torch.float32:
        return f"the triton backend's kernels take float32 parameters, not {str(dtype).removeprefix('torch.')}"
    if not _installed():
        return "the triton backend needs the triton package, which is not installed"
    return None


@functools.cache
def _kernels(interpret: bool) -> SimpleNamespace:
    """The step kernels, compiled (or interpreted, as TRITON_INTERPRET said when first asked for)."""
    import triton

    from . import triton_kernels

    # the step indices change every launch: one compiled kernel for all of them
    return SimpleNamespace(
        forward=triton.jit(triton_kernels.lstm_step_forward, do_not_specialize=["t", "src", "dst"]),
        backward=triton.jit(triton_kernels.lstm_step_backward, do_not_specialize=["t", "src"]),
        block=triton.next_power_of_2,
    )


def _flags(
    norm: bool, rec_mask: Tensor | None, zone: int, lengths: Tensor | None, hidden: int, kernels: SimpleNamespace
) -> dict[str, int]:
    """The kernels' constexpr flags and launch options (fused multiply-adds allowed)."""
    block = kernels.block(hidden)
    return {
        "LAYER_NORM": norm, "RECURRENT_DROPOUT": rec_mask is not None, "ZONEOUT": zone,
        "LENGTHS": lengths is not None, "BLOCK": block, "num_warps": min(16, max(4, block // 256)),
        "enable_fp_fusion": True,
    }


class _Recurrence(torch.autograd.Function):
    """One layer and direction: (xproj, h0, c0, W_hh and the layer-norm gains) -> (y, h_T, c_T[, traces]).

    xproj (T, B, 4H) time-major; h0, c0 (B, H); W_hh (4H, H); y (T, B, H). The state lives in buffers of
    T+1 slots; step t reads slot t and writes slot t+1 (slot t+1, slot t in reverse).
    """

    @staticmethod
    def forward(
        ctx, xproj, h0, c0, w_hh, ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, keep_p, lengths, reverse, traced
    ):
        ctx.set_materialize_grads(False)  # unused outputs get no zero-filled gradients
        k = _kernels(interpreted())
        steps, batch, gates4 = xproj.shape
        hidden = gates4 // 4
        new = xproj.new_empty
        norm = ln_hh is not None
        hs, cs = new(steps + 1, batch, hidden), new(steps + 1, batch, hidden)
        first = steps if reverse else 0
        hs[first], cs[first] = h0, c0
        hr = hs
        if rec_mask is not None:
            hr = new(steps + 1, batch, hidden)
            hr[first] = h0 * rec_mask
        y, gates = new(steps, batch, hidden), new(steps, batch, gates4)
        placeholder = new(1)
        ln_saved = (None,) * 4                     # gh_hat, rstd_hh, c_hat, rstd_c: what the norms' backward needs
        if norm:
            ln_saved = (new(steps, batch, gates4), new(steps, batch), new(steps, batch, hidden), new(steps, batch))
        gh_hat, rstd_hh, c_hat, rstd_c = (_or(s, placeholder) for s in ln_saved)
        gh = new(batch, gates4)
        w_t = w_hh.t()
        zone = 0 if keep_p is None else 1 if keep_c is not None else 2
        keep_c_p, keep_h_p = keep_p if zone == 2 else (0.0, 0.0)
        features = tuple(_or(a, placeholder) for a in (ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths))
        flags = _flags(norm, rec_mask, zone, lengths, hidden, k)
        launch = k.forward[(batch,)]
        with torch.autocast(device_type=xproj.device.type, enabled=False):
            for t in reversed(range(steps)) if reverse else range(steps):
                src, dst = (t + 1, t) if reverse else (t, t + 1)
                torch.mm(hr[src], w_t, out=gh)                                    # (B, 4H)
                launch(
                    xproj, gh, hs, cs, hr, y, gates, gh_hat, rstd_hh, c_hat, rstd_c, *features,
                    t, src, dst, batch, hidden, keep_c_p, keep_h_p, LAYER_NORM_EPS, **flags,
                )
        last = 0 if reverse else steps
        ctx.save_for_backward(
            w_hh, gates, cs, hr, *ln_saved,
            ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths,
        )
        ctx.keep_p, ctx.zone, ctx.reverse = (keep_c_p, keep_h_p), zone, reverse
        h_T, c_T = hs[last].clone(), cs[last].clone()
        if not traced:
            return y, h_T, c_T
        c_out = cs[:steps] if reverse else cs[1:]                                  # (T, B, H) after each step
        if lengths is not None:
            valid = torch.arange(steps, device=lengths.device)[:, None] < lengths[None, :]  # (T, B)
            c_out = torch.where(valid[..., None], c_out, 0.0)
        c_out = c_out.clone()
        ctx.mark_non_differentiable(gates, c_out)
        return y, h_T, c_T, gates, c_out

    @staticmethod
    def backward(ctx, dy, dh_T, dc_T, *_traces):
        (w_hh, gates, cs, hr, gh_hat, rstd_hh, c_hat, rstd_c,
         ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths) = ctx.saved_tensors
        k = _kernels(interpreted())
        steps, batch, gates4 = gates.shape
        hidden = gates4 // 4
        new = gates.new_empty
        norm = ln_hh is not None
        placeholder = new(1)
        dy = gates.new_zeros(steps, batch, hidden) if dy is None else dy.contiguous()
        dh = gates.new_zeros(batch, hidden) if dh_T is None else dh_T.clone(memory_format=torch.contiguous_format)
        dc = gates.new_zeros(batch, hidden) if dc_T is None else dc_T.clone(memory_format=torch.contiguous_format)
        dhr = gates.new_zeros(batch, hidden)       # gradient of the next step's h_rec, through its product
        dxp, dgh = new(steps, batch, gates4), new(steps, batch, gates4)
        dtc = new(steps, batch, hidden) if norm else placeholder
        keep_c_p, keep_h_p = ctx.keep_p
        saved = (gh_hat, rstd_hh, c_hat, rstd_c, ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths)
        features = tuple(_or(a, placeholder) for a in saved)
        flags = _flags(norm, rec_mask, ctx.zone, lengths, hidden, k)
        launch = k.backward[(batch,)]
        with torch.autocast(device_type=gates.device.type, enabled=False):
            for t in range(steps) if ctx.reverse else reversed(range(steps)):
                src = t + 1 if ctx.reverse else t
                launch(
                    dy, dh, dc, dhr, gates, cs, *features, dxp, dgh, dtc,
                    t, src, batch, hidden, keep_c_p, keep_h_p, **flags,
                )
                torch.mm(dgh[t], w_hh, out=dhr)                                   # (B, H)
            dh0 = dh + (dhr if rec_mask is None else dhr * rec_mask)
            h_in = hr[1:] if ctx.reverse else hr[:steps]                           # (T, B, H), each step's h_rec
            dw_hh = dgh.view(-1, gates4).t() @ h_in.reshape(-1, hidden)           # (4H, H)
            dln_hh = dln_c_w = dln_c_b = None
            if norm:
                dln_hh = (dxp * gh_hat).sum((0, 1))                                # (4H,)
                dln_c_w = (dtc * c_hat).sum((0, 1))                                # (H,)
                dln_c_b = dtc.sum((0, 1))                                          # (H,)
        return dxp, dh0, dc, dw_hh, dln_hh, dln_c_w, dln_c_b, None, None, None, None, None, None, None


def _or(tensor: Tensor | None, placeholder: Tensor) -> Tensor:
    """Kernels take a placeholder where a feature is off."""
    return placeholder if tensor is None else tensor


def _input_projection(x_tm: Tensor, w: CellWeights) -> Tensor:
    """W_ih x_t + biases for every step at once (layer-normalised first with layer norm):
    x_tm (T, B, I) -> (T, B, 4H), one matrix product."""
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


def _float(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.float().contiguous()


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
            rec_mask, keep_c, keep_h, keep_p = masks.for_kernel(spec, batch, steps, x, training)
            xproj = _input_projection(layer_input, w).float().contiguous()     # (T, B, 4H)
            y, h_T, c_T, *traced = _Recurrence.apply(
                xproj, h0_all[idx].float(), c0_all[idx].float(), _float(w.w_hh),
                _float(w.ln_hh), _float(w.ln_c_w), _float(w.ln_c_b), rec_mask, keep_c, keep_h, keep_p,
                lengths, direction == 1, trace is not None,
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
