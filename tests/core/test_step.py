import math

import pytest
import torch

from lstmkit.core import GATE_ORDER, CellWeights, gru_step, lstm_pointwise, lstm_step, rnn_tanh_step


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_gate_order_is_torch_order():
    assert GATE_ORDER == ("i", "f", "g", "o")


def test_lstm_step_golden_values_by_hand():
    # one input feature, one unit; pre-activation of gate k is a_k * x + b_k * h_prev + bias_k
    a, b, bias = [0.5, -0.3, 0.8, 0.1], [0.2, 0.4, -0.6, 0.9], [0.1, 1.0, 0.0, -0.2]
    x, h_prev, c_prev = 0.7, -0.4, 0.25
    pre = [a[k] * x + b[k] * h_prev + bias[k] for k in range(4)]
    i, f, g, o = _sig(pre[0]), _sig(pre[1]), math.tanh(pre[2]), _sig(pre[3])
    c_expected = f * c_prev + i * g
    h_expected = o * math.tanh(c_expected)

    w = CellWeights(torch.tensor([a]).T, torch.tensor([b]).T, torch.tensor(bias), torch.zeros(4))
    h, c, gates = lstm_step(torch.tensor([[x]]), torch.tensor([[h_prev]]), torch.tensor([[c_prev]]), w)
    assert h.item() == pytest.approx(h_expected, abs=1e-6)
    assert c.item() == pytest.approx(c_expected, abs=1e-6)
    assert [t.item() for t in gates] == pytest.approx([i, f, g, o], abs=1e-6)


def test_pointwise_saturated_forget_keeps_cell():
    hidden = 3
    pre = torch.cat([torch.full((1, hidden), -30.0), torch.full((1, hidden), 30.0), torch.zeros(1, 2 * hidden)], -1)
    c_prev = torch.tensor([[0.3, -1.2, 2.0]])
    _, c, _ = lstm_pointwise(pre, c_prev)  # f = 1, i = 0: the cell passes through unchanged
    torch.testing.assert_close(c, c_prev)


@pytest.mark.parametrize("proj", [0, 3])
def test_lstm_step_matches_torch_lstm_cell(proj):
    torch.manual_seed(0)
    cell = torch.nn.LSTM(5, 7, proj_size=proj)
    x = torch.randn(4, 5)
    h0, c0 = torch.randn(4, proj or 7), torch.randn(4, 7)
    w = CellWeights(
        cell.weight_ih_l0, cell.weight_hh_l0, cell.bias_ih_l0, cell.bias_hh_l0, cell.weight_hr_l0 if proj else None
    )
    h, c, _ = lstm_step(x, h0, c0, w)
    _, (h_ref, c_ref) = cell(x[None], (h0[None], c0[None]))
    torch.testing.assert_close(h, h_ref[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, c_ref[0], atol=1e-6, rtol=1e-5)


def test_gru_and_rnn_steps_match_torch_cells():
    torch.manual_seed(1)
    x, h0 = torch.randn(3, 4), torch.randn(3, 6)
    gru, rnn = torch.nn.GRUCell(4, 6), torch.nn.RNNCell(4, 6)
    for step, cell in ((gru_step, gru), (rnn_tanh_step, rnn)):
        w = CellWeights(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        torch.testing.assert_close(step(x, h0, w), cell(x, h0), atol=1e-6, rtol=1e-5)


def test_recurrent_mask_only_touches_the_recurrent_product():
    torch.manual_seed(2)
    cell = torch.nn.LSTMCell(3, 4)
    w = CellWeights(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    x, h0, c0 = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    mask = torch.tensor([[2.0, 0.0, 2.0, 0.0], [0.0, 2.0, 0.0, 2.0]])
    h, c, _ = lstm_step(x, h0, c0, w, recurrent_mask=mask)
    h_ref, c_ref = cell(x, (h0 * mask, c0))  # same as feeding the masked h; c_prev is untouched
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
