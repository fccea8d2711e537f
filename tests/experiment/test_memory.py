"""The memory experiment: objective metrics, input-gradient norms, the runner's folder and its errors."""

import json

import pytest
import torch
from torch import nn

from lstmkit import LstmkitError
from lstmkit.config import ModelConfig
from lstmkit.experiment import (
    COPY_SYMBOLS,
    MemoryConfig,
    MemoryModel,
    MemoryObjective,
    adding_problem,
    copy_task,
    input_gradient_norms,
    run_memory,
)

TINY = dict(hidden_size=4, steps=4, batch_size=8, evals=2, val_size=16, test_size=24, quiet=True)


class _Constant(nn.Module):
    def forward(self, inputs):
        return torch.ones(inputs.shape[0])


class _Oracle(nn.Module):
    """Copy-task logits that put all mass on the symbols shown at the start."""

    def forward(self, inputs):
        return nn.functional.one_hot(inputs[:, :10] - 1, COPY_SYMBOLS).float() * 10


def test_objective_metrics_of_known_models():
    data = adding_problem(20_000, 6, torch.Generator().manual_seed(0))
    metrics = MemoryObjective("adding").evaluate(_Constant(), data, torch.device("cpu"))
    assert metrics["loss"] == metrics["mse"] and abs(metrics["mse"] - 1 / 6) < 0.006
    copy = copy_task(50, 5, torch.Generator().manual_seed(0))
    metrics = MemoryObjective("copy").evaluate(_Oracle(), copy, torch.device("cpu"))
    assert metrics["accuracy"] == 1.0 and metrics["loss"] < 1e-3


def test_model_outputs_per_task():
    torch.manual_seed(0)
    adding = MemoryModel(ModelConfig(cell="gru", hidden_size=5, num_layers=1, dropout=0.0), "adding")
    assert adding(adding_problem(3, 9, torch.Generator()).inputs).shape == (3,)
    copy = MemoryModel(ModelConfig(cell="lstm", embed_dim=4, hidden_size=5, num_layers=1, dropout=0.0), "copy")
    assert copy(copy_task(3, 4, torch.Generator()).inputs).shape == (3, 10, COPY_SYMBOLS)


def test_input_gradient_norms_match_autograd_and_vanish_for_an_untrained_rnn():
    torch.manual_seed(0)
    model = MemoryModel(ModelConfig(cell="rnn", hidden_size=16, num_layers=1, dropout=0.0), "adding")
    batch = adding_problem(8, 60, torch.Generator().manual_seed(1))
    objective = MemoryObjective("adding")
    norms = input_gradient_norms(model, batch, objective)
    assert norms.shape == (60,)
    x = batch.inputs[1:2].clone().requires_grad_(True)          # one sequence by hand
    ((model(x) - batch.targets[1:2]) ** 2).sum().backward()
    single = input_gradient_norms(model, type(batch)(batch.inputs[1:2], batch.targets[1:2]), objective)
    torch.testing.assert_close(single, x.grad[0].norm(dim=-1))
    assert norms[-1] > 1e3 * norms[0]  # the last input matters far more than the first: vanishing gradient


def test_run_memory_writes_the_folder(tmp_path):
    out = tmp_path / "memory"
    results = run_memory(MemoryConfig(cells=("rnn", "lstm"), lengths=(5, 8), **TINY), out=out)
    rows = json.loads((out / "results.json").read_text())
    assert rows == results.rows
    assert [(r["cell"], r["length"]) for r in rows] == [("rnn", 5), ("lstm", 5), ("rnn", 8), ("lstm", 8)]
    for row in rows:
        assert row["task"] == "adding" and row["steps"] == 4
        assert set(row) >= {"cell", "length", "task", "test_mse", "seconds"}
        assert 0 < row["test_mse"] < 5 and row["seconds"] > 0
    gradients = json.loads((out / "gradients.json").read_text())
    assert gradients["length"] == 8 and sorted(gradients["norms"]) == ["lstm", "rnn"]
    assert len(gradients["norms"]["lstm"]) == 8
    for name in ("error_vs_length.png", "gradient_vs_distance.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(LstmkitError) as err:
        run_memory(MemoryConfig(cells=("rnn",), lengths=(5,), **TINY), out=out)
    assert str(err.value) == (
        f"output folder {out} already exists; pass --overwrite to replace it or --resume to continue it"
    )


def test_same_seed_same_results_and_copy_task_accuracy():
    config = MemoryConfig(task="copy", cells=("gru",), lengths=(3,), **TINY)
    a, b = run_memory(config), run_memory(config)
    assert a.rows[0]["test_accuracy"] == b.rows[0]["test_accuracy"]
    assert 0 <= a.rows[0]["test_accuracy"] <= 1 and "test_mse" not in a.rows[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "sort"}, "task must be one of adding, copy, got 'sort'"),
        ({"cells": ()}, "give at least one cell type (rnn, gru, lstm)"),
        ({"cells": ("lstm", "tcn")}, "cells must be among lstm, gru, rnn, got 'tcn'"),
        ({"lengths": (10, 1)}, "lengths must be integers of at least 2, got [10, 1]"),
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"lr": 0.0}, "lr and grad_clip must be positive, got 0.0 and 1.0"),
    ],
)
def test_config_errors(changes, message):
    with pytest.raises(LstmkitError) as err:
        run_memory(MemoryConfig(**{**TINY, **changes}))
    assert str(err.value) == message


def test_a_solved_run_stops_early():
    easy = MemoryConfig(cells=("lstm",), lengths=(5,), **{**TINY, "steps": 6, "evals": 3}, solved_mse=10.0)
    assert run_memory(easy).rows[0]["steps"] == 2  # validation after the first 2 steps says "solved"
    never = MemoryConfig(cells=("lstm",), lengths=(5,), **{**TINY, "steps": 6, "evals": 3}, solved_mse=0.0)
    assert run_memory(never).rows[0]["steps"] == 6
