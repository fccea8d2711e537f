"""Traces against the LSTM equations written out by hand, their named dimensions, and loading errors."""

import json

import numpy as np
import pytest
import torch
from inspect_helpers import TEXT, tiny_generator

from lstmkit import LstmkitError
from lstmkit.inspect import Trace, load_subject, trace
from lstmkit.train.checkpoint import save_tensors


def _by_hand(x: torch.Tensor, w_ih, w_hh, b, reverse=False):
    """The LSTM equations for one layer and direction, x (T, I) -> i, f, g, o, c, h each (T, H)."""
    steps, hidden = x.shape[0], w_hh.shape[1]
    h, c = torch.zeros(hidden), torch.zeros(hidden)
    out = {k: [None] * steps for k in "ifgoch"}
    for t in reversed(range(steps)) if reverse else range(steps):
        z = w_ih @ x[t] + w_hh @ h + b
        i = 1 / (1 + torch.exp(-z[:hidden]))
        f = 1 / (1 + torch.exp(-z[hidden:2 * hidden]))
        g = torch.tanh(z[2 * hidden:3 * hidden])
        o = 1 / (1 + torch.exp(-z[3 * hidden:]))
        c = f * c + i * g
        h = o * torch.tanh(c)
        for k, v in zip("ifgoch", (i, f, g, o, c, h), strict=True):
            out[k][t] = v
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("bidirectional", [False, True])
def test_trace_matches_the_lstm_equations(bidirectional):
    gen = tiny_generator(bidirectional=bidirectional)
    tr = trace(gen, TEXT)
    directions = 2 if bidirectional else 1
    assert tr.shape == {"layer": 2, "direction": directions, "time": len(TEXT), "unit": 6}
    assert tr.tokens == list(TEXT)
    rnn = gen.model.encoder.rnn
    with torch.no_grad():
        layer_input = gen.model.encoder.embedding(gen.vocab.encode(TEXT))       # (T, E)
        for layer in range(2):
            outputs = []
            for direction in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                p = {name: getattr(rnn, name + sfx) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                ref = _by_hand(layer_input, p["weight_ih"], p["weight_hh"], p["bias_ih"] + p["bias_hh"], direction == 1)
                for k in "ifgoch":
                    np.testing.assert_allclose(tr[k][layer, direction], ref[k].numpy(), atol=1e-5, rtol=1e-4)
                outputs.append(ref["h"])
            layer_input = torch.cat(outputs, dim=-1)


def test_trace_accessors():
    tr = trace(tiny_generator(num_layers=1), "ab\nba")
    assert tr.dims == ("layer", "direction", "time", "unit")
    np.testing.assert_array_equal(tr.unit("f", 0, 3), tr["f"][0, 0, :, 3])
    frame = tr.to_frame("c")
    assert frame.shape == (5, 6) and frame.index.names == ["time", "token"]
    assert list(frame.index.get_level_values("token")) == ["a", "b", "\n", "b", "a"]
    with pytest.raises(LstmkitError) as err:
        tr["z"]
    assert str(err.value) == "unknown quantity 'z'; choose one of: c, h, i, f, o, g"


def test_trace_errors():
    generator = tiny_generator()
    with pytest.raises(LstmkitError) as err:
        trace(generator, "")
    assert str(err.value) == "the text to inspect is empty"
    with pytest.raises(LstmkitError) as err:
        trace(tiny_generator(cell="gru"), "abc")
    assert str(err.value) == (
        "inspect shows LSTM gates and cell states, but the run in . uses a GRU; train it with --cell lstm"
    )
    with pytest.raises(LstmkitError) as err:
        trace(42, "abc")
    assert str(err.value) == "cannot inspect a int; give a run folder or a loaded model"


def _folder(tmp_path, task="textgen", cell="lstm"):
    gen = tiny_generator(cell=cell)
    folder = tmp_path / f"{task}-{cell}"
    folder.mkdir()
    config = gen.config.to_dict() | {"task": task}
    config["model"]["cell"] = cell
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.json").write_text(json.dumps(gen.vocab.to_json()))
    save_tensors(folder / "model.safetensors", gen.model.state_dict())
    return folder


def test_loading_run_folders(tmp_path):
    folder = _folder(tmp_path)
    subject = load_subject(folder)
    assert subject.task == "textgen" and subject.path == folder
    assert isinstance(trace(str(folder), "abc"), Trace)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t / "nowhere", "run folder not found: {p}"),
        (lambda t: t, "{p} is not an lstmkit run folder (no config.json)"),
        (lambda t: _folder(t, task="lm"), "inspect cannot read 'lm' runs yet; it reads runs of: classify, textgen"),
        (lambda t: _folder(t, cell="rnn"),
         "inspect shows LSTM gates and cell states, but the run in {p} uses a RNN; train it with --cell lstm"),
    ],
)
def test_loading_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(LstmkitError) as err:
        load_subject(path)
    assert str(err.value) == message.format(p=path)


def test_trace_of_a_word_level_classifier():
    from lstmkit.config import ModelConfig, RunConfig, TrainConfig
    from lstmkit.data.vectorizer import TextVectorizer
    from lstmkit.models.classifier import build_classifier
    from lstmkit.tasks.text_classification import Classifier

    torch.manual_seed(0)
    config = ModelConfig(embed_dim=4, hidden_size=5, num_layers=1, dropout=0.0, bidirectional=True)
    vectorizer = TextVectorizer.fit(["a good film", "a bad film"], vocab_size=10, max_tokens=20)
    clf = Classifier(build_classifier(config, len(vectorizer), 2).eval(), vectorizer, ["neg", "pos"],
                     RunConfig("classify", None, config, TrainConfig()), {}, None)
    tr = trace(clf, "A good, good film!")
    assert tr.tokens == ["a", "good", "good", "film"]
    assert tr.shape == {"layer": 1, "direction": 2, "time": 4, "unit": 5}
    # the same word read twice in a row gives different states: the trace follows the recurrence
    assert not np.allclose(tr["c"][0, 0, 1], tr["c"][0, 0, 2])
