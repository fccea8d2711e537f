"""`lstmkit experiment memory` end to end with a tiny budget, and its errors."""

import json

from lstmkit.cli.main import main

SMALL = ["--steps", "3", "--batch-size", "8", "--hidden-size", "4", "--quiet"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_memory_adding_writes_results(tmp_path, capsys):
    out = tmp_path / "mem"
    code, stdout, err = _run(capsys, "experiment", "memory", "--cells", "rnn,LSTM", "--lengths", "6,4", "--out", out,
                             "--seed", "3", *SMALL)
    assert code == 0, err
    rows = json.loads((out / "results.json").read_text())
    assert [(r["cell"], r["length"], r["task"]) for r in rows] == [
        ("rnn", 4, "adding"), ("lstm", 4, "adding"), ("rnn", 6, "adding"), ("lstm", 6, "adding")
    ]
    assert json.loads((out / "config.json").read_text())["experiment"]["seed"] == 3
    lines = stdout.splitlines()
    assert lines[0].split() == ["cell", "length", "test_mse", "seconds"]
    assert lines[1].split()[:3] == ["rnn", "4", f"{rows[0]['test_mse']:.4f}"]
    assert lines[-1] == f"wrote {out}"
    code, _, err = _run(capsys, "experiment", "memory", "--cells", "gru", "--lengths", "4", "--out", out, *SMALL)
    assert (code, err.strip()) == (
        2, f"error: output folder {out} already exists; pass --overwrite to replace it or --resume to continue it"
    )
    code, _, _ = _run(capsys, "experiment", "memory", "--cells", "gru", "--lengths", "4", "--out", out,
                      "--overwrite", *SMALL)
    assert code == 0 and [r["cell"] for r in json.loads((out / "results.json").read_text())] == ["gru"]


def test_memory_copy_prints_accuracy(capsys):
    code, stdout, _ = _run(capsys, "experiment", "memory", "--task", "copy", "--cells", "lstm", "--lengths", "3",
                           *SMALL)
    assert code == 0
    assert stdout.splitlines()[0].split() == ["cell", "length", "test_accuracy", "seconds"]


def test_memory_errors(capsys):
    cases = [
        (["--cells", "lstm,tcn"], "error: cells must be among lstm, gru, rnn, got 'tcn'"),
        (["--lengths", "1,50"], "error: lengths must be integers of at least 2, got [1, 50]"),
        (["--lengths", "a,b"], "error: argument --lengths: expected comma-separated integers, got 'a,b' "
                               "(see `lstmkit experiment memory --help`)"),
        (["--lr", "-1"], "error: lr and grad_clip must be positive, got -1.0 and 1.0"),
        (["--task", "sort"], "error: argument --task: invalid choice: 'sort' (choose from 'adding', 'copy') "
                             "(see `lstmkit experiment memory --help`)"),
    ]
    for argv, message in cases:
        try:
            code = main(["experiment", "memory", *argv, "--quiet"])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert (code, err.strip()) == (2, message)
