"""The oracle checked too: the reference backend's regularisers against their papers' definitions, on inputs
small enough to follow by hand. Every fast backend is held to the reference (test_conformance.py), so a wrong
reference would be copied everywhere; these tests derive the expected numbers from the definitions alone,
with Python floats, never from lstmkit's own step functions.

- Zoneout (Krueger et al., 2016): while training each unit keeps its previous h and c with probability p
  (one draw per unit, step and sequence); in evaluation the state is the expectation,
  c = p c_prev + (1 - p) c_new and h = p h_prev + (1 - p) h_new.
- Layer normalisation (Ba et al., 2016, section 3.1 for RNNs): the input and recurrent products are normalised
  separately over the 4H gate axis, LN(v) = gain * (v - mean(v)) / sqrt(var(v) + eps) (biased variance),
  pre = LN(W_ih x) + LN(W_hh h) + b; the cell goes through LN before its tanh: h = o * tanh(LN(c)).
- Recurrent (variational) dropout (Gal & Ghahramani, 2016): one mask on h_prev per sequence, the same at every
  step, scaled by 1 / keep.
"""

import math

import pytest
import torch

from lstmkit import LSTM

EPS = 1e-5  # the layer-norm epsilon (Ba et al. leave it free; torch.nn.LayerNorm's default)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def lstm_by_hand(pre: list[float], c_prev: float) -> tuple[float, float]:
    """One unit's step from its four pre-activations (i, f, g, o): (h, c)."""
    i, f, g, o = sigmoid(pre[0]), sigmoid(pre[1]), math.tanh(pre[2]), sigmoid(pre[3])
    c = f * c_prev + i * g
    return o * math.tanh(c), c


def one_unit(w_ih: list[float], w_hh: list[float], bias: list[float], **kwargs) -> LSTM:
    """An LSTM of one input and one unit with the given per-gate weights (i, f, g, o), on the reference."""
    lstm = LSTM(1, 1, backend="reference", **kwargs)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(w_ih)[:, None])
        lstm.weight_hh_l0.copy_(torch.tensor(w_hh)[:, None])
        lstm.bias_ih_l0.copy_(torch.tensor(bias))
        lstm.bias_hh_l0.zero_()
    return lstm


W_IH, W_HH, BIAS = [0.5, -0.3, 0.8, 0.2], [0.1, 0.4, -0.6, 0.3], [0.05, 1.0, -0.1, 0.2]


@pytest.mark.parametrize("p", [0.0, 0.25, 0.9])
def test_zoneout_in_evaluation_is_the_expectation_of_its_training_masks(p):
    lstm = one_unit(W_IH, W_HH, BIAS, zoneout=p).eval()
    xs = [0.7, -1.2, 0.4]
    h, c, want = 0.0, 0.0, []
    for x in xs:
        pre = [W_IH[k] * x + W_HH[k] * h + BIAS[k] for k in range(4)]
        h_new, c_new = lstm_by_hand(pre, c)
        c = p * c + (1 - p) * c_new
        h = p * h + (1 - p) * h_new
        want.append(h)
    with torch.no_grad():
        y, (h_n, c_n) = lstm(torch.tensor(xs)[None, :, None])
    torch.testing.assert_close(y[0, :, 0], torch.tensor(want), rtol=0, atol=1e-6)
    assert abs(float(c_n) - c) < 1e-6 and abs(float(h_n) - h) < 1e-6


def test_zoneout_while_training_keeps_each_unit_whole_or_updates_it_with_probability_p():
    """From a zero state, one step: each unit's h is either its previous value (0) or the fresh update,
    computed here from the LSTM equations; the kept fraction is p."""
    torch.manual_seed(0)
    p, batch, units = 0.3, 32, 64
    lstm = LSTM(2, units, backend="reference", zoneout=p).train()
    x = torch.randn(batch, 1, 2)
    with torch.no_grad():
        y, _ = lstm(x)
    pre = x[:, 0].double() @ lstm.weight_ih_l0.double().T + (lstm.bias_ih_l0 + lstm.bias_hh_l0).double()
    i, _, g, o = pre.chunk(4, dim=-1)                                              # (B, H) each
    h_new = torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))        # c_prev = 0
    got = y[:, 0].double()
    kept, updated = got.abs() < 1e-7, (got - h_new).abs() < 1e-6
    assert bool((kept ^ updated).all()), "a unit neither kept its h nor took the update"
    assert abs(float(kept.double().mean()) - p) < 0.04, float(kept.double().mean())


def test_zoneout_while_training_draws_each_step_and_sequence_anew():
    """With W_hh = 0 and no bias each step's fresh h is a function of x alone, so which units kept their
    previous value shows each step's draw: the draws differ between steps and between sequences."""
    torch.manual_seed(1)
    units, steps, p = 128, 4, 0.5
    lstm = LSTM(1, units, backend="reference", zoneout=p).train()
    with torch.no_grad():
        lstm.weight_hh_l0.zero_()
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
        lstm.weight_ih_l0.fill_(1.0)
        x = torch.tensor([1.0, -1.0, 2.0, -2.0])[None, :, None].repeat(2, 1, 1)   # (2, T, 1)
        y, _ = lstm(x)
    keeps = []
    for t in range(1, steps):
        keeps.append(y[:, t] == y[:, t - 1])                                   # (2, H): kept at step t
    assert not torch.equal(keeps[0], keeps[1]) and not torch.equal(keeps[1], keeps[2])
    assert not torch.equal(keeps[0][0], keeps[0][1])


def _ln(v: list[float], gain: list[float], bias: list[float] | None = None) -> list[float]:
    mean = sum(v) / len(v)
    var = sum((e - mean) ** 2 for e in v) / len(v)
    bias = bias or [0.0] * len(v)
    return [gain[k] * (e - mean) / math.sqrt(var + EPS) + bias[k] for k, e in enumerate(v)]


def test_layer_norm_follows_ba_et_al_on_two_units():
    units = 2
    lstm = LSTM(1, units, backend="reference", layer_norm=True)
    w_ih = [0.5, -0.3, 0.8, 0.2, -0.7, 0.4, 0.1, 0.9]
    w_hh = [[0.1, -0.2], [0.4, 0.3], [-0.6, 0.5], [0.3, 0.1], [0.2, -0.4], [-0.1, 0.6], [0.7, 0.2], [0.05, -0.3]]
    bias = [0.05, 1.0, -0.1, 0.2, 0.0, 0.5, 0.1, -0.2]
    gain_ih = [1.0, 0.5, 2.0, 1.5, 0.8, 1.2, 0.9, 1.1]
    gain_hh = [0.7, 1.3, 1.0, 0.6, 1.4, 0.9, 1.1, 0.5]
    gain_c, bias_c = [1.5, 0.5], [0.1, -0.2]
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(w_ih)[:, None])
        lstm.weight_hh_l0.copy_(torch.tensor(w_hh))
        lstm.bias_ih_l0.copy_(torch.tensor(bias))
        lstm.bias_hh_l0.zero_()
        lstm.ln_ih_weight_l0.copy_(torch.tensor(gain_ih))
        lstm.ln_hh_weight_l0.copy_(torch.tensor(gain_hh))
        lstm.ln_c_weight_l0.copy_(torch.tensor(gain_c))
        lstm.ln_c_bias_l0.copy_(torch.tensor(bias_c))
    xs = [0.7, -1.2, 0.4]
    h, c, want = [0.3, -0.5], [0.2, 0.1], []
    for x in xs:
        a = _ln([w * x for w in w_ih], gain_ih)
        r = _ln([sum(w_hh[row][k] * h[k] for k in range(units)) for row in range(4 * units)], gain_hh)
        pre = [a[k] + r[k] + bias[k] for k in range(4 * units)]
        gate = [pre[g * units:(g + 1) * units] for g in range(4)]           # i, f, g, o blocks of H
        c = [sigmoid(gate[1][k]) * c[k] + sigmoid(gate[0][k]) * math.tanh(gate[2][k]) for k in range(units)]
        c_norm = _ln(c, gain_c, bias_c)
        h = [sigmoid(gate[3][k]) * math.tanh(c_norm[k]) for k in range(units)]
        want.append(h)
    state = (torch.tensor([[[0.3, -0.5]]]), torch.tensor([[[0.2, 0.1]]]))
    with torch.no_grad():
        y, (_, c_n) = lstm(torch.tensor(xs)[None, :, None], state)
    torch.testing.assert_close(y[0], torch.tensor(want), rtol=0, atol=2e-6)
    torch.testing.assert_close(c_n[0, 0], torch.tensor(c), rtol=0, atol=2e-6)  # the state is c, not LN(c)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_recurrent_dropout_draws_one_mask_per_sequence(p):
    """Unit k reads only its own h_prev (W_hh diagonal on the candidate, zero elsewhere) and the input, so
    its whole trajectory is one of two computable ones: h_prev always dropped, or always kept and scaled by
    1 / keep. A mask drawn per step would mix them; masks differ between sequences."""
    torch.manual_seed(2)
    units, batch, steps, a = 64, 16, 6, 1.5
    keep = 1.0 - p
    lstm = LSTM(1, units, backend="reference", recurrent_dropout=p).train()
    with torch.no_grad():
        lstm.weight_ih_l0.zero_()
        lstm.weight_ih_l0[2 * units:3 * units] = 1.0                  # the candidate reads x
        lstm.weight_hh_l0.zero_()
        lstm.weight_hh_l0[2 * units:3 * units] = a * torch.eye(units)  # ... and its own unit's h_prev
        lstm.bias_ih_l0.zero_()
        lstm.bias_hh_l0.zero_()
        x = torch.randn(batch, steps, 1)
        y, _ = lstm(x)

    def trajectory(scale: float, xs: list[float]) -> list[float]:
        h, c, out = 0.0, 0.0, []
        for v in xs:
            h, c = lstm_by_hand([0.0, 0.0, v + a * h * scale, 0.0], c)
            out.append(h)
        return out

    dropped_units = 0
    for row in range(batch):
        xs = x[row, :, 0].tolist()
        dropped = torch.tensor(trajectory(0.0, xs))
        scaled = torch.tensor(trajectory(1.0 / keep, xs))
        for k in range(units):
            got = y[row, :, k]
            is_dropped = torch.allclose(got, dropped, atol=1e-5, rtol=0)
            is_kept = torch.allclose(got, scaled, atol=1e-5, rtol=0)
            assert is_dropped or is_kept, f"sequence {row}, unit {k}: neither one mask for the whole sequence"
            dropped_units += is_dropped
    assert abs(dropped_units / (batch * units) - p) < 0.07
    in_first = [bool(torch.allclose(y[0, :, k], torch.tensor(trajectory(0.0, x[0, :, 0].tolist())), atol=1e-5))
                for k in range(units)]
    in_second = [bool(torch.allclose(y[1, :, k], torch.tensor(trajectory(0.0, x[1, :, 0].tolist())), atol=1e-5))
                 for k in range(units)]
    assert in_first != in_second, "every sequence got the same mask"


def test_recurrent_dropout_and_zoneout_are_off_in_evaluation():
    torch.manual_seed(3)
    lstm = LSTM(3, 8, backend="reference", recurrent_dropout=0.5).eval()
    plain = LSTM(3, 8, backend="reference").eval()
    plain.load_state_dict(lstm.state_dict())
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        torch.testing.assert_close(lstm(x)[0], plain(x)[0], rtol=0, atol=0)
