"""Keras LSTM weights imported into the torch layout reproduce a NumPy implementation of Keras's equations."""

import numpy as np
import pytest
import torch

from lstmkit import LSTM, LstmkitError, keras_lstm_weights, load_keras_lstm


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def keras_lstm_numpy(x, kernel, recurrent_kernel, bias, reverse=False):
    """Keras's LSTM cell: z = x @ kernel + h @ recurrent_kernel + bias, gates i, f, c, o. x (B, T, I)."""
    batch, steps, _ = x.shape
    hidden = recurrent_kernel.shape[0]
    h, c = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    out = np.zeros((batch, steps, hidden))
    for t in reversed(range(steps)) if reverse else range(steps):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f = _sigmoid(z[:, :hidden]), _sigmoid(z[:, hidden : 2 * hidden])
        g, o = np.tanh(z[:, 2 * hidden : 3 * hidden]), _sigmoid(z[:, 3 * hidden :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[:, t] = h
    return out, h, c


def _keras_arrays(rng, inputs, hidden):
    return [
        rng.normal(size=(inputs, 4 * hidden)),
        rng.normal(size=(hidden, 4 * hidden)) * 0.5,
        rng.normal(size=4 * hidden),
    ]


def test_two_layer_import_matches_numpy_keras():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4))
    layer0, layer1 = _keras_arrays(rng, 4, 5), _keras_arrays(rng, 5, 5)
    y0, _, _ = keras_lstm_numpy(x, *layer0)
    y1, h1, c1 = keras_lstm_numpy(y0, *layer1)
    lstm = load_keras_lstm(LSTM(4, 5, num_layers=2), [layer0, layer1])
    y, state = lstm(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(y.detach().numpy(), y1, atol=1e-5)
    np.testing.assert_allclose(state.h[1].detach().numpy(), h1, atol=1e-5)
    np.testing.assert_allclose(state.c[1].detach().numpy(), c1, atol=1e-5)


def test_bidirectional_import_matches_numpy_keras():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 3))
    forward, backward = _keras_arrays(rng, 3, 4), _keras_arrays(rng, 3, 4)
    y_f, _, _ = keras_lstm_numpy(x, *forward)
    y_b, _, _ = keras_lstm_numpy(x, *backward, reverse=True)
    lstm = load_keras_lstm(LSTM(3, 4, bidirectional=True), [forward, backward])
    y, _ = lstm(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(y.detach().numpy(), np.concatenate([y_f, y_b], -1), atol=1e-5)


def test_conversion_layout():
    kernel, rec, bias = np.ones((3, 8)), np.ones((2, 8)), np.arange(8.0)
    w = keras_lstm_weights(kernel, rec, bias)
    assert w["weight_ih"].shape == (8, 3) and w["weight_hh"].shape == (8, 2)
    assert torch.equal(w["bias_ih"], torch.arange(8.0)) and torch.equal(w["bias_hh"], torch.zeros(8))


@pytest.mark.parametrize(
    "layers, message",
    [
        ([], "got Keras weights for 0 layers, this LSTM has 1 (layers x directions)"),
        (
            [[np.ones((3, 8)), np.ones((3, 8)), np.ones(8)]],
            "Keras LSTM weights do not fit together: kernel (3, 8), recurrent_kernel (3, 8); "
            "expected (I, 4H) and (H, 4H)",
        ),
        (
            [[np.ones((5, 8)), np.ones((2, 8)), np.ones(8)]],
            "Keras weight_ih for layer entry 0 has shape (8, 5), this LSTM expects (8, 3)",
        ),
        ([[np.ones((3, 8)), np.ones((2, 8))]], "the Keras layer has no bias but this LSTM was built with bias=True"),
    ],
)
def test_import_errors_are_clear(layers, message):
    with pytest.raises(LstmkitError) as err:
        load_keras_lstm(LSTM(3, 2), layers)
    assert str(err.value) == message
