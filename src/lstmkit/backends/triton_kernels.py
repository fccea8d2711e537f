"""The pointwise half of one LSTM step, forward and backward, as Triton kernels (the triton backend's maths).

The functions here are plain Python, turned into kernels by ``triton.jit`` in triton_gpu.py, so that the
choice between compiled and interpreted kernels follows TRITON_INTERPRET at the time of use. One program
handles one batch row; BLOCK >= H lanes hold one gate block, so the layer norms are row reductions.

Buffers cover the whole sequence and every tensor is contiguous: per step (T, B, 4H), (T, B, H) or (T, B),
indexed by the time step t; states (T+1, B, H), indexed by slot (the step reads slot src, writes slot dst).
Flags (constexpr): LAYER_NORM, RECURRENT_DROPOUT, LENGTHS; ZONEOUT is 0 (none), 1 (0/1 masks per step) or
2 (the keep probabilities keep_c_p and keep_h_p, in evaluation). Pointer arguments of a disabled feature
are placeholders and never read.
"""

import triton.language as tl


def lstm_step_forward(
    xp, gh, hs, cs, hr, y, gates, gh_hat, rstd_hh, c_hat, rstd_c,
    ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths,
    t, src, dst, B, H, keep_c_p, keep_h_p, eps,
    LAYER_NORM: tl.constexpr, RECURRENT_DROPOUT: tl.constexpr, ZONEOUT: tl.constexpr, LENGTHS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Step t, row b. In: xp (T, B, 4H) input projection with biases; gh (B, 4H) = hr[src] @ W_hh^T;
    hs[src], cs[src] the state. Out: hs[dst], cs[dst] the new state, y[t] (B, H) the output,
    hr[dst] = hs[dst] * rec_mask, gates[t] (B, 4H) the activations i, f, g, o; with layer norm also
    gh_hat[t] (B, 4H) the normalised recurrent product, rstd_hh[t] (B,), c_hat[t] (B, H), rstd_c[t] (B,)."""
    b = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    m = cols < H
    t = t.to(tl.int64)
    g_row = t * B * 4 * H + b * 4 * H + cols       # row b of step t in a (T, B, 4H) buffer
    u_row = t * B * H + b * H + cols               # ... in a (T, B, H) buffer
    s_row = t * B + b                              # ... in a (T, B) buffer
    src_row = src.to(tl.int64) * B * H + b * H + cols
    dst_row = dst.to(tl.int64) * B * H + b * H + cols
    r4 = b * 4 * H + cols                          # row b of gh (B, 4H)
    a_i = tl.load(gh + r4, mask=m, other=0.0)
    a_f = tl.load(gh + r4 + H, mask=m, other=0.0)
    a_g = tl.load(gh + r4 + 2 * H, mask=m, other=0.0)
    a_o = tl.load(gh + r4 + 3 * H, mask=m, other=0.0)
    if LAYER_NORM:
        # LN(W_hh h) over the 4H gates of the row, gain ln_hh, no shift
        mean = (tl.sum(a_i, axis=0) + tl.sum(a_f, axis=0) + tl.sum(a_g, axis=0) + tl.sum(a_o, axis=0)) / (4 * H)
        a_i = tl.where(m, a_i - mean, 0.0)
        a_f = tl.where(m, a_f - mean, 0.0)
        a_g = tl.where(m, a_g - mean, 0.0)
        a_o = tl.where(m, a_o - mean, 0.0)
        var = (
            tl.sum(a_i * a_i, axis=0) + tl.sum(a_f * a_f, axis=0)
            + tl.sum(a_g * a_g, axis=0) + tl.sum(a_o * a_o, axis=0)
        ) / (4 * H)
        rstd = 1.0 / tl.sqrt(var + eps)
        a_i, a_f, a_g, a_o = a_i * rstd, a_f * rstd, a_g * rstd, a_o * rstd
        tl.store(gh_hat + g_row, a_i, mask=m)
        tl.store(gh_hat + g_row + H, a_f, mask=m)
        tl.store(gh_hat + g_row + 2 * H, a_g, mask=m)
        tl.store(gh_hat + g_row + 3 * H, a_o, mask=m)
        tl.store(rstd_hh + s_row, rstd)
        a_i = a_i * tl.load(ln_hh + cols, mask=m, other=0.0)
        a_f = a_f * tl.load(ln_hh + H + cols, mask=m, other=0.0)
        a_g = a_g * tl.load(ln_hh + 2 * H + cols, mask=m, other=0.0)
        a_o = a_o * tl.load(ln_hh + 3 * H + cols, mask=m, other=0.0)
    i = tl.sigmoid(a_i + tl.load(xp + g_row, mask=m, other=0.0))
    f = tl.sigmoid(a_f + tl.load(xp + g_row + H, mask=m, other=0.0))
    g = 2.0 * tl.sigmoid(2.0 * (a_g + tl.load(xp + g_row + 2 * H, mask=m, other=0.0))) - 1.0  # tanh
    o = tl.sigmoid(a_o + tl.load(xp + g_row + 3 * H, mask=m, other=0.0))
    cp = tl.load(cs + src_row, mask=m, other=0.0)
    hp = tl.load(hs + src_row, mask=m, other=0.0)
    c = tl.where(m, f * cp + i * g, 0.0)
    cn = c
    if LAYER_NORM:
        # LN(c) over the H units, gain ln_c_w, shift ln_c_b
        mean_c = tl.sum(c, axis=0) / H
        d = tl.where(m, c - mean_c, 0.0)
        r = 1.0 / tl.sqrt(tl.sum(d * d, axis=0) / H + eps)
        tl.store(c_hat + u_row, d * r, mask=m)
        tl.store(rstd_c + s_row, r)
        cn = d * r * tl.load(ln_c_w + cols, mask=m, other=0.0) + tl.load(ln_c_b + cols, mask=m, other=0.0)
    h = o * (2.0 * tl.sigmoid(2.0 * cn) - 1.0)
    if ZONEOUT == 1:
        kc = tl.load(keep_c + u_row, mask=m, other=0.0)
        kh = tl.load(keep_h + u_row, mask=m, other=0.0)
        c = kc * cp + (1.0 - kc) * c
        h = kh * hp + (1.0 - kh) * h
    if ZONEOUT == 2:
        c = keep_c_p * cp + (1.0 - keep_c_p) * c
        h = keep_h_p * hp + (1.0 - keep_h_p) * h
    out = h
    if LENGTHS:
        # a padded step keeps the state, outputs zeros and records zero gates
        valid = t < tl.load(lengths + b)
        c = tl.where(valid, c, cp)
        out = tl.where(valid, h, 0.0)
        h = tl.where(valid, h, hp)
        i = tl.where(valid, i, 0.0)
        f = tl.where(valid, f, 0.0)
        g = tl.where(valid, g, 0.0)
        o = tl.where(valid, o, 0.0)
    tl.store(hs + dst_row, h, mask=m)
    tl.store(cs + dst_row, c, mask=m)
    tl.store(y + u_row, out, mask=m)
    if RECURRENT_DROPOUT:
        tl.store(hr + dst_row, h * tl.load(rec_mask + b * H + cols, mask=m, other=0.0), mask=m)
    tl.store(gates + g_row, i, mask=m)
    tl.store(gates + g_row + H, f, mask=m)
    tl.store(gates + g_row + 2 * H, g, mask=m)
    tl.store(gates + g_row + 3 * H, o, mask=m)


def lstm_step_backward(
    dy, dh, dc, dhr, gates, cs, gh_hat, rstd_hh, c_hat, rstd_c,
    ln_hh, ln_c_w, ln_c_b, rec_mask, keep_c, keep_h, lengths,
    dxp, dgh, dtc,
    t, src, B, H, keep_c_p, keep_h_p,
    LAYER_NORM: tl.constexpr, RECURRENT_DROPOUT: tl.constexpr, ZONEOUT: tl.constexpr, LENGTHS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """The gradients of step t, row b. In: dy (T, B, H) of the outputs; dh, dc (B, H) of the state after
    the step, but for the path through the next step's recurrent product, dhr (B, H) = dgh_next @ W_hh;
    what the forward saved (cs[src] is c_prev). Out: dh, dc overwritten with the gradients of the state
    before the step (but for this step's recurrent product); dxp[t] (B, 4H) of the pre-activations, so of
    the input projection; dgh[t] (B, 4H) of the recurrent product; with layer norm dtc[t] (B, H) of LN(c)'s
    output, for the gradients of its gain and shift."""
    b = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    m = cols < H
    t = t.to(tl.int64)
    g_row = t * B * 4 * H + b * 4 * H + cols
    u_row = t * B * H + b * H + cols
    s_row = t * B + b
    src_row = src.to(tl.int64) * B * H + b * H + cols
    r1 = b * H + cols                              # row b of a (B, H) tensor
    dh_next = tl.load(dh + r1, mask=m, other=0.0)
    dc_next = tl.load(dc + r1, mask=m, other=0.0)
    if RECURRENT_DROPOUT:
        dh_next += tl.load(dhr + r1, mask=m, other=0.0) * tl.load(rec_mask + r1, mask=m, other=0.0)
    else:
        dh_next += tl.load(dhr + r1, mask=m, other=0.0)
    dh_out = dh_next + tl.load(dy + u_row, mask=m, other=0.0)
    i = tl.load(gates + g_row, mask=m, other=0.0)
    f = tl.load(gates + g_row + H, mask=m, other=0.0)
    g = tl.load(gates + g_row + 2 * H, mask=m, other=0.0)
    o = tl.load(gates + g_row + 3 * H, mask=m, other=0.0)
    cp = tl.load(cs + src_row, mask=m, other=0.0)
    cn = f * cp + i * g
    if LAYER_NORM:
        ch = tl.load(c_hat + u_row, mask=m, other=0.0)
        w_c = tl.load(ln_c_w + cols, mask=m, other=0.0)
        cn = ch * w_c + tl.load(ln_c_b + cols, mask=m, other=0.0)
    tc = 2.0 * tl.sigmoid(2.0 * cn) - 1.0          # tanh of the (normalised) cell
    dh_new = dh_out
    dc_new = dc_next
    dh_prev = tl.zeros_like(dh_out)
    dc_prev = tl.zeros_like(dc_next)
    if ZONEOUT == 1:
        kc = tl.load(keep_c + u_row, mask=m, other=0.0)
        kh = tl.load(keep_h + u_row, mask=m, other=0.0)
        dh_new = (1.0 - kh) * dh_out
        dh_prev = kh * dh_out
        dc_new = (1.0 - kc) * dc_next
        dc_prev = kc * dc_next
    if ZONEOUT == 2:
        dh_new = (1.0 - keep_h_p) * dh_out
        dh_prev = keep_h_p * dh_out
        dc_new = (1.0 - keep_c_p) * dc_next
        dc_prev = keep_c_p * dc_next
    do = dh_new * tc
    d_tc = tl.where(m, dh_new * o * (1.0 - tc * tc), 0.0)
    if LENGTHS:
        valid = t < tl.load(lengths + b)
        d_tc = tl.where(valid, d_tc, 0.0)
    if LAYER_NORM:
        tl.store(dtc + u_row, d_tc, mask=m)
        dn = d_tc * w_c
        mean1 = tl.sum(dn, axis=0) / H
        mean2 = tl.sum(dn * ch, axis=0) / H
        dc_new += tl.load(rstd_c + s_row) * tl.where(m, dn - mean1 - ch * mean2, 0.0)
    else:
        dc_new += d_tc
    dc_prev += dc_new * f
    dp_i = dc_new * g * i * (1.0 - i)
    dp_f = dc_new * cp * f * (1.0 - f)
    dp_g = dc_new * i * (1.0 - g * g)
    dp_o = do * o * (1.0 - o)
    if LENGTHS:
        # a padded step passed the state through: so do its gradients, and nothing reaches the gates
        dp_i = tl.where(valid, dp_i, 0.0)
        dp_f = tl.where(valid, dp_f, 0.0)
        dp_g = tl.where(valid, dp_g, 0.0)
        dp_o = tl.where(valid, dp_o, 0.0)
        dh_prev = tl.where(valid, dh_prev, dh_next)
        dc_prev = tl.where(valid, dc_prev, dc_next)
    tl.store(dxp + g_row, dp_i, mask=m)
    tl.store(dxp + g_row + H, dp_f, mask=m)
    tl.store(dxp + g_row + 2 * H, dp_g, mask=m)
    tl.store(dxp + g_row + 3 * H, dp_o, mask=m)
    if LAYER_NORM:
        # back through LN(W_hh h): dn = dpre * gain, then the normalisation's backward over the 4H gates
        n_i = tl.load(gh_hat + g_row, mask=m, other=0.0)
        n_f = tl.load(gh_hat + g_row + H, mask=m, other=0.0)
        n_g = tl.load(gh_hat + g_row + 2 * H, mask=m, other=0.0)
        n_o = tl.load(gh_hat + g_row + 3 * H, mask=m, other=0.0)
        dn_i = dp_i * tl.load(ln_hh + cols, mask=m, other=0.0)
        dn_f = dp_f * tl.load(ln_hh + H + cols, mask=m, other=0.0)
        dn_g = dp_g * tl.load(ln_hh + 2 * H + cols, mask=m, other=0.0)
        dn_o = dp_o * tl.load(ln_hh + 3 * H + cols, mask=m, other=0.0)
        mean1 = (tl.sum(dn_i, axis=0) + tl.sum(dn_f, axis=0) + tl.sum(dn_g, axis=0) + tl.sum(dn_o, axis=0)) / (4 * H)
        mean2 = (
            tl.sum(dn_i * n_i, axis=0) + tl.sum(dn_f * n_f, axis=0)
            + tl.sum(dn_g * n_g, axis=0) + tl.sum(dn_o * n_o, axis=0)
        ) / (4 * H)
        r = tl.load(rstd_hh + s_row)
        dp_i = tl.where(m, r * (dn_i - mean1 - n_i * mean2), 0.0)
        dp_f = tl.where(m, r * (dn_f - mean1 - n_f * mean2), 0.0)
        dp_g = tl.where(m, r * (dn_g - mean1 - n_g * mean2), 0.0)
        dp_o = tl.where(m, r * (dn_o - mean1 - n_o * mean2), 0.0)
    tl.store(dgh + g_row, dp_i, mask=m)
    tl.store(dgh + g_row + H, dp_f, mask=m)
    tl.store(dgh + g_row + 2 * H, dp_g, mask=m)
    tl.store(dgh + g_row + 3 * H, dp_o, mask=m)
    tl.store(dh + r1, dh_prev, mask=m)
    tl.store(dc + r1, dc_prev, mask=m)
