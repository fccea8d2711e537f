import pytest
import torch

from lstmkit import GRU, LSTM, RNN, GRUCell, LSTMCell, LstmkitError, LSTMState, RNNCell, detach


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("proj", [0, 2])
def test_state_dict_loads_into_torch_and_back(bidirectional, proj):
    ours = LSTM(4, 5, num_layers=2, bidirectional=bidirectional, proj_size=proj)
    theirs = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=bidirectional, proj_size=proj, batch_first=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    fresh = LSTM(4, 5, num_layers=2, bidirectional=bidirectional, proj_size=proj)
    fresh.load_state_dict(theirs.state_dict())
    for name, tensor in ours.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor)


def test_gru_and_rnn_parameter_names_match_torch():
    assert list(GRU(3, 4, 2, bidirectional=True).state_dict()) == list(
        torch.nn.GRU(3, 4, 2, bidirectional=True).state_dict()
    )
    assert list(RNN(3, 4, 2).state_dict()) == list(torch.nn.RNN(3, 4, 2).state_dict())


def test_forget_gate_bias_starts_at_one():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.equal(p, torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 8))
        elif name.startswith("bias_hh"):
            assert torch.equal(p, torch.zeros(16))
    plain = LSTM(3, 4, unit_forget_bias=False)
    assert not torch.equal(plain.bias_ih_l0[4:8], torch.ones(4))
    cell = LSTMCell(3, 4)
    assert torch.equal(cell.bias_ih[4:8] + cell.bias_hh[4:8], torch.ones(4))


@pytest.mark.parametrize("backend", ["reference", "torch"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_changes_neither_state_nor_outputs(backend, bidirectional):
    torch.manual_seed(0)
    lstm = LSTM(3, 5, num_layers=2, bidirectional=bidirectional, backend=backend)
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 3)
    y, state = lstm(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        y_alone, state_alone = lstm(x[b : b + 1, :n])  # the sequence on its own, no padding at all
        torch.testing.assert_close(y[b, :n], y_alone[0], atol=1e-5, rtol=1e-4)
        assert torch.count_nonzero(y[b, n:]) == 0
        torch.testing.assert_close(state.h[:, b], state_alone.h[:, 0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(state.c[:, b], state_alone.c[:, 0], atol=1e-5, rtol=1e-4)
    x_changed = x.clone()
    x_changed[1, 2:] = 100.0  # garbage in the padding
    y2, state2 = lstm(x_changed, lengths=lengths)
    torch.testing.assert_close(y2, y)
    torch.testing.assert_close(state2.c, state.c)


def test_time_major_and_unbatched_inputs():
    torch.manual_seed(1)
    lstm = LSTM(3, 4)
    x = torch.randn(2, 5, 3)
    y, _ = lstm(x)
    lstm_tm = LSTM(3, 4, batch_first=False)
    lstm_tm.load_state_dict(lstm.state_dict())
    y_tm, _ = lstm_tm(x.transpose(0, 1))
    torch.testing.assert_close(y_tm.transpose(0, 1), y)
    y1, s1 = lstm(x[0])  # (T, I): one sequence without a batch axis, as torch.nn.LSTM accepts
    assert y1.shape == (5, 4) and s1.h.shape == (1, 4)
    torch.testing.assert_close(y1, y[0])


def test_state_carries_across_calls():
    torch.manual_seed(2)
    lstm = LSTM(3, 4, num_layers=2)
    x = torch.randn(2, 8, 3)
    y_full, s_full = lstm(x)
    y_a, s_a = lstm(x[:, :5])
    y_b, s_b = lstm(x[:, 5:], s_a)
    torch.testing.assert_close(torch.cat([y_a, y_b], 1), y_full)
    torch.testing.assert_close(s_b.c, s_full.c)
    detached = detach(s_b)
    assert isinstance(detached, LSTMState) and not detached.h.requires_grad


def test_trace_matches_the_equations():
    torch.manual_seed(3)
    lstm = LSTM(3, 4, num_layers=2)
    x = torch.randn(2, 5, 3)
    y, state, trace = lstm.trace(x)
    assert trace.i.shape == (2, 1, 2, 5, 4) and trace.dims == ("layer", "direction", "batch", "time", "hidden")
    y_fwd, _ = lstm(x)
    torch.testing.assert_close(y, y_fwd)
    # recompute layer 0 by hand from its weights
    w_ih, w_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0
    h, c = torch.zeros(2, 4), torch.zeros(2, 4)
    for t in range(5):
        pre = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = (
            torch.sigmoid(pre[:, :4]),
            torch.sigmoid(pre[:, 4:8]),
            torch.tanh(pre[:, 8:12]),
            torch.sigmoid(pre[:, 12:]),
        )
        c = f * c + i * g
        h = o * torch.tanh(c)
        for name, value in (("i", i), ("f", f), ("g", g), ("o", o), ("c", c)):
            torch.testing.assert_close(getattr(trace, name)[0, 0, :, t], value, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(trace.c[1, 0, :, -1], state.c[1])


def test_trace_zeroes_padded_steps():
    lstm = LSTM(2, 3, bidirectional=True)
    _, _, trace = lstm.trace(torch.randn(2, 4, 2), lengths=torch.tensor([4, 2]))
    assert torch.count_nonzero(trace.f[:, :, 1, 2:]) == 0
    assert torch.all(trace.f[:, :, 1, :2] > 0)


def test_recurrent_dropout_is_active_only_in_training():
    torch.manual_seed(4)
    lstm = LSTM(3, 6, recurrent_dropout=0.5)
    plain = LSTM(3, 6)
    plain.load_state_dict(lstm.state_dict())
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(lstm.eval()(x)[0], plain(x)[0])
    assert not torch.allclose(lstm.train()(x)[0], plain(x)[0])


def test_cells_match_torch_cells():
    torch.manual_seed(5)
    x, h0, c0 = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    for ours, theirs in ((GRUCell(4, 5), torch.nn.GRUCell(4, 5)), (RNNCell(4, 5), torch.nn.RNNCell(4, 5))):
        theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ours(x, h0), theirs(x, h0))
    cell, ref = LSTMCell(4, 5), torch.nn.LSTMCell(4, 5)
    ref.load_state_dict(cell.state_dict())
    h, c = cell(x, LSTMState(h0, c0))
    h_ref, c_ref = ref(x, (h0, c0))
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(torch.randn(2, 5, 4)), "LSTM expects 3 input features (input_size), got 4"),
        (lambda m: m(torch.randn(5)), "LSTM expects input of 3 dimensions (batch, time, features), got shape (5,)"),
        (lambda m: m(torch.randn(2, 0, 3)), "LSTM got an empty sequence (0 time steps)"),
        (
            lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([5, 6])),
            "lengths must lie between 1 and the sequence length 5, got [5, 6]",
        ),
        (lambda m: m(torch.randn(2, 5, 3), lengths=torch.tensor([5])), "lengths has 1 entries for a batch of 2"),
        (
            lambda m: m(torch.randn(2, 5, 3), LSTMState(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))),
            "LSTM state has shape ((1, 2, 4), (1, 2, 4)), expected ((2, 2, 4), (2, 2, 4)) "
            "(layers*directions, batch, units)",
        ),
    ],
)
def test_input_errors_are_clear(call, message):
    with pytest.raises(LstmkitError) as err:
        call(LSTM(3, 4, num_layers=2))
    assert str(err.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=0), "hidden_size must be a positive integer, got 0"),
        (dict(dropout=1.5), "dropout must be a number in [0, 1], got 1.5"),
        (dict(proj_size=4), "proj_size must be 0 or between 1 and hidden_size - 1, got 4"),
    ],
)
def test_construction_errors_are_clear(kwargs, message):
    with pytest.raises(LstmkitError) as err:
        LSTM(**{"input_size": 3, "hidden_size": 4, **kwargs})
    assert str(err.value) == message


def test_projection_is_lstm_only():
    with pytest.raises(LstmkitError) as err:
        GRU(3, 4, proj_size=2)
    assert str(err.value) == "proj_size is only available for LSTM"
