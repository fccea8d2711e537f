import json

import pytest
import torch

from lstmkit import LstmkitError, textgen

pytestmark = pytest.mark.data

TINY = dict(seq_len=20, embed_dim=8, hidden_size=16, num_layers=1, batch_size=8, quiet=True)


def test_train_writes_a_complete_run_and_load_samples(macbeth_excerpt, tmp_path):
    out = tmp_path / "run"
    gen = textgen.train(macbeth_excerpt, out=out, epochs=2, **TINY)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["val"]) == {"loss", "perplexity", "bits_per_char"}
    assert metrics["val"]["bits_per_char"] == pytest.approx(metrics["val"]["loss"] / 0.6931471805599453)
    assert metrics["run"]["epochs"] == 2 and metrics["run"]["stop_reason"] == "epochs"
    vocab = json.loads((out / "vocab.json").read_text())
    assert "M" in vocab["chars"] and vocab["type"] == "char"
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "textgen" and config["model"]["hidden_size"] == 16 and config["data"]["seq_len"] == 20

    loaded = textgen.load(out)
    a = loaded.sample(prime="MACBETH", length=50, temperature=0.8, seed=3)
    assert len(a) == 50 and set(a) <= set(vocab["chars"])
    assert loaded.sample(prime="MACBETH", length=50, temperature=0.8, seed=3) == a
    assert gen.sample(prime="MACBETH", length=50, temperature=0.8, seed=3) == a
    greedy = loaded.sample(length=30, temperature=0)
    assert greedy == loaded.sample(length=30, temperature=0, seed=99)  # argmax ignores the seed
    assert len(loaded.sample(length=20, top_k=1, seed=1)) == 20
    loaded.model.encoder.rnn.backend = "reference"  # the Python loop over LSTM.step draws the same numbers
    assert loaded.sample(prime="MACBETH", length=50, temperature=0.8, seed=3) == a


def test_training_lowers_validation_loss(macbeth_excerpt, tmp_path):
    gen = textgen.train(macbeth_excerpt, out=tmp_path / "run", epochs=4, lr=0.01, **TINY)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["val_loss"] < history[0]["val_loss"] < 4.0
    assert gen.metrics["val"]["perplexity"] < len(gen.vocab)


def test_resumed_run_matches_uninterrupted_run(macbeth_excerpt, tmp_path):
    settings = dict(TINY, epochs=2, dropout=0.2, num_layers=2, patience=None, lr_schedule="cosine", restore_best=False)
    textgen.train(macbeth_excerpt, out=tmp_path / "full", **settings)
    textgen.train(macbeth_excerpt, out=tmp_path / "part", max_steps=7, **settings)
    assert json.loads((tmp_path / "part" / "metrics.json").read_text())["run"]["stop_reason"] == "max_steps"
    textgen.train(out=tmp_path / "part", resume=True, max_steps=10_000)  # unset, max_steps would stay 7
    full = textgen.load(tmp_path / "full").model.state_dict()
    part = textgen.load(tmp_path / "part").model.state_dict()
    for name in full:
        assert torch.equal(full[name], part[name]), name


def test_resume_keeps_the_configuration(macbeth_excerpt, tmp_path):
    textgen.train(macbeth_excerpt, out=tmp_path / "run", max_steps=2, **TINY)
    with pytest.raises(LstmkitError) as err:
        textgen.train(out=tmp_path / "run", resume=True, hidden_size=32)
    assert str(err.value) == (
        "a resumed run keeps its configuration; only epochs, max_steps, max_time, quiet may change, "
        "got: hidden_size was 16, now 32"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prime="MACBETH €"), "the prime text has characters the model never saw in training: ' ', '€'"),
        (dict(temperature=-1), "temperature must be 0 (greedy) or positive, got -1"),
        (dict(length=-5), "length must be 0 or more, got -5"),
    ],
)
def test_sampling_errors(macbeth_excerpt, tmp_path, kwargs, message):
    gen = textgen.train(macbeth_excerpt, out=tmp_path / "run", max_steps=1, **TINY)
    if " " in gen.vocab.chars:
        message = message.replace("' ', ", "")
    with pytest.raises(LstmkitError) as err:
        gen.sample(**kwargs)
    assert str(err.value) == message


def test_text_shorter_than_one_window(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Fair is foul, and foul is fair.\n")  # 32 characters: 29 for training, 3 held out
    with pytest.raises(LstmkitError) as err:
        textgen.train(path, out=tmp_path / "run", **{**TINY, "seq_len": 40})
    assert str(err.value) == (
        "text too short: its training part has 29 characters and one training window needs seq_len + 1 = 41; "
        "use a longer text or a smaller --seq-len"
    )
    assert not (tmp_path / "run").exists()


def test_registered_dataset_by_name(tmp_path):
    gen = textgen.train(data="macbeth", out=tmp_path / "run", max_steps=1, **TINY)
    assert gen.config.data.data == "macbeth" and gen.config.data.text == ""
