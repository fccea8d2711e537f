"""The sampling rule, and generation in one compiled call against the Python loop over LSTM.step."""

import pytest
import torch
from torch import nn

from lstmkit.backends import extension
from lstmkit.nn import LSTM, sampling


def test_pick_follows_the_inverse_cdf_of_the_softmax():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = probs.log()
    # cumulative 0.1, 0.3, 0.6, 1.0: u picks the first id whose cumulative probability exceeds it
    assert [sampling.pick(logits, u, 1.0) for u in (0.0, 0.09, 0.11, 0.29, 0.31, 0.59, 0.61, 0.99)] == [
        0, 0, 1, 1, 2, 2, 3, 3,
    ]
    assert sampling.pick(logits, 0.0, 0.0) == 3 and sampling.pick(logits, 0.99, 0.0) == 3  # greedy ignores u
    assert sampling.pick(logits, 0.99, 0.0, banned=3) == 2
    assert {sampling.pick(logits, u / 10, 1.0, banned=0) for u in range(10)} == {1, 2, 3}
    assert {sampling.pick(logits, u / 10, 1.0, top_k=2) for u in range(10)} == {2, 3}
    # a low temperature sharpens: every u but the smallest lands on the likeliest id
    assert {sampling.pick(logits, u / 10, 0.05) for u in range(1, 10)} == {3}


def _model(hidden: int, layers: int, zoneout: float = 0.0, backend: str = "auto"):
    torch.manual_seed(0)
    lstm = LSTM(8, hidden, num_layers=layers, zoneout=zoneout, backend=backend).eval()
    return lstm, nn.Embedding(11, 8).eval(), nn.Linear(hidden, 11).eval()


@pytest.mark.skipif(extension.unavailable_reason() is not None, reason="the fused extension is not built")
@pytest.mark.parametrize(
    "hidden,layers,zoneout,temperature,top_k",
    [(16, 1, 0.0, 1.0, None), (24, 2, 0.0, 0.8, 4), (16, 2, 0.2, 1.0, None), (16, 1, 0.0, 0.0, None),
     (160, 2, 0.0, 1.0, None)],  # the last is big enough to split across threads
)
def test_compiled_generation_matches_the_python_loop(hidden, layers, zoneout, temperature, top_k):
    lstm, embedding, decoder = _model(hidden, layers, zoneout)
    reference = LSTM(8, hidden, num_layers=layers, zoneout=zoneout, backend="reference").eval()
    reference.load_state_dict(lstm.state_dict())
    logits = torch.randn(11, generator=torch.Generator().manual_seed(1))
    uniforms = torch.rand(60, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fast = sampling.generate(lstm, embedding, decoder, logits, None, uniforms, temperature, top_k, banned=0)
        slow = sampling.generate(reference, embedding, decoder, logits, None, uniforms, temperature, top_k, banned=0)
    assert fast[0].tolist() == slow[0].tolist()
    assert 0 not in fast[0].tolist()
    torch.testing.assert_close(fast[1].h, slow[1].h, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast[1].c, slow[1].c, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast[2], slow[2], atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(extension.unavailable_reason() is not None, reason="the fused extension is not built")
def test_generation_continues_where_it_stopped():
    lstm, embedding, decoder = _model(16, 2)
    logits = torch.randn(11)
    uniforms = torch.rand(21)
    whole = sampling.generate(lstm, embedding, decoder, logits, None, uniforms)
    first = sampling.generate(lstm, embedding, decoder, logits, None, uniforms[:8])
    rest = sampling.generate(lstm, embedding, decoder, first[2], first[1], uniforms[8:])
    assert torch.cat([first[0], rest[0]]).tolist() == whole[0].tolist()
    torch.testing.assert_close(rest[1].h, whole[1].h)


def test_generation_without_the_extension_is_the_python_loop(monkeypatch):
    monkeypatch.setenv("LSTMKIT_NO_EXTENSION", "1")
    extension.reset()
    try:
        lstm, embedding, decoder = _model(16, 1)
        ids, state, _ = sampling.generate(lstm, embedding, decoder, torch.randn(11), None, torch.rand(5))
        assert ids.shape == (5,) and state.h.shape == (1, 1, 16)
    finally:
        monkeypatch.delenv("LSTMKIT_NO_EXTENSION")
        extension.reset()
