"""Reproducible by construction: a run records the backend that trained it and why; --resume and --config
train on it again even where auto would now choose another; a resume per backend that trains. And the
command line's promises about stopping: --max-time stops and resumes, Ctrl-C exits 130 with the run saved,
a bug exits 1 (the traceback with LSTMKIT_DEBUG), --device cpu, the per-epoch log without --quiet."""

import json
from types import SimpleNamespace

import pytest
import torch

import lstmkit
from lstmkit.backends import autotune, extension
from lstmkit.cli.main import main
from lstmkit.tasks import registry
from lstmkit.train.engine import Trainer

TEXTGEN = registry.get("textgen")


def _weights(folder) -> dict[str, torch.Tensor]:
    return lstmkit.load(folder).model.state_dict()


def _same_weights(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def _run_record(folder) -> tuple[str, dict]:
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return config["model"]["backend_used"], metrics["run"]


def _interrupt_at(monkeypatch, call: int) -> list:
    real, calls = Trainer._train_step, []

    def step(self, batch):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", step)
    return calls


@pytest.fixture
def tiny(tmp_path) -> dict:
    return TEXTGEN.example(tmp_path).settings


@pytest.mark.parametrize("backend", ["torch", "fused", "reference", "triton"])
def test_resume_reaches_the_uninterrupted_weights_on_each_training_backend(backend, tiny, tmp_path, monkeypatch):
    if backend == "fused" and extension.load() is None:
        pytest.skip(f"the fused extension is not built: {extension.unavailable_reason()}")
    if backend == "triton" and not torch.cuda.is_available():
        pytest.skip("the triton backend trains on CUDA devices")
    # recurrent dropout where the backend has it: its masks are part of what a resume must redraw exactly
    settings = {**tiny, "backend": backend, "recurrent_dropout": 0.0 if backend == "torch" else 0.2}
    TEXTGEN.train(out=tmp_path / "full", **settings)
    calls = _interrupt_at(monkeypatch, 5)
    TEXTGEN.train(out=tmp_path / "part", **settings)
    monkeypatch.undo()
    assert len(calls) == 5 and _run_record(tmp_path / "part")[1]["stop_reason"] == "interrupted"
    TEXTGEN.train(out=tmp_path / "part", resume=True, **settings)
    _same_weights(tmp_path / "full", tmp_path / "part")
    used, run = _run_record(tmp_path / "part")
    assert used == backend and run["backend"] == backend and run["backend_reason"] == "named"


@pytest.fixture
def auto_takes_fused(monkeypatch):
    """auto as if fused had measured faster here; undone by ``auto_takes_torch``."""
    if extension.load() is None:
        pytest.skip(f"the fused extension is not built: {extension.unavailable_reason()}")
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    monkeypatch.setattr(autotune, "choose", lambda *args, **kwargs: "fused")


def _auto_takes_torch(monkeypatch) -> None:
    monkeypatch.undo()
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")  # auto then takes torch wherever it runs


def test_auto_records_its_choice_and_why(auto_takes_fused, tiny, tmp_path):
    TEXTGEN.train(out=tmp_path / "run", **tiny)
    used, run = _run_record(tmp_path / "run")
    assert used == run["backend"] == "fused"
    assert run["backend_reason"].startswith("auto: fused measured faster than torch on this machine for batch ")
    assert lstmkit.load(tmp_path / "run").config.model.backend == "auto"  # what was asked stays recorded too


def test_resume_keeps_the_recorded_backend_when_auto_would_now_choose_another(
    auto_takes_fused, tiny, tmp_path, monkeypatch
):
    TEXTGEN.train(out=tmp_path / "full", **tiny)
    calls = _interrupt_at(monkeypatch, 5)
    TEXTGEN.train(out=tmp_path / "part", **tiny)
    assert len(calls) == 5
    _auto_takes_torch(monkeypatch)
    TEXTGEN.train(out=tmp_path / "part", resume=True, **tiny)
    _same_weights(tmp_path / "full", tmp_path / "part")
    assert _run_record(tmp_path / "part")[0] == "fused"


def test_config_of_a_run_trains_the_same_weights_on_its_backend(auto_takes_fused, tiny, tmp_path, monkeypatch,
                                                                 capsys):
    TEXTGEN.train(out=tmp_path / "first", **tiny)
    _auto_takes_torch(monkeypatch)
    code = main(["textgen", "train", "--config", str(tmp_path / "first" / "config.json"),
                 "--out", str(tmp_path / "again")])
    assert code == 0, capsys.readouterr().err
    _same_weights(tmp_path / "first", tmp_path / "again")
    used, run = _run_record(tmp_path / "again")
    assert used == "fused" and run["backend_reason"] == "recorded by the run it was configured from"
    # a changed model setting lets auto choose again (torch, with measuring off)
    assert main(["textgen", "train", "--config", str(tmp_path / "first"), "--hidden-size", "12",
                 "--out", str(tmp_path / "changed")]) == 0
    assert _run_record(tmp_path / "changed")[0] == "torch"


def test_config_and_resume_exclude_each_other(tiny, tmp_path, capsys):
    TEXTGEN.train(out=tmp_path / "run", **tiny)
    code = main(["textgen", "train", "--config", str(tmp_path / "run"), "--out", str(tmp_path / "run"), "--resume"])
    assert (code, capsys.readouterr().err) == (2, "error: config and resume exclude each other: resume continues "
                                                  "with the saved configuration in out\n")


def _cli_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


def test_max_time_stops_the_run_and_resume_continues_it(tiny, tmp_path, monkeypatch, capsys):
    clock = iter(range(10_000))  # each reading of the trainer's clock advances one second
    monkeypatch.setattr("lstmkit.train.engine.time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    settings = {k: v for k, v in tiny.items() if k != "max_steps"}
    out = tmp_path / "run"
    assert main(["textgen", "train", *_cli_args(settings), "--max-time", "6", "--out", str(out)]) == 0
    first = _run_record(out)[1]
    assert first["stop_reason"] == "max_time" and 0 < first["steps"] < 12 and first["seconds"] >= 6
    # the same command resumed with more time trains on from where it stopped
    assert main(["textgen", "train", *_cli_args(settings), "--max-time", "12", "--out", str(out), "--resume"]) == 0
    second = _run_record(out)[1]
    assert second["steps"] > first["steps"] and second["seconds"] >= 12
    capsys.readouterr()


def test_ctrl_c_exits_130_with_the_run_saved_and_says_how_to_continue(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, 3)
    assert main(["textgen", "train", *_cli_args(tiny), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.endswith(f"continue with: lstmkit textgen train --out {out} --resume\n")
    run = _run_record(out)[1]
    assert run["stop_reason"] == "interrupted" and run["steps"] == 2
    monkeypatch.undo()
    assert main(["textgen", "train", "--out", str(out), "--resume"]) == 0
    assert _run_record(out)[1]["steps"] == tiny["max_steps"]


def test_an_unexpected_error_exits_1_in_one_line_and_the_traceback_with_debug(tiny, tmp_path, monkeypatch, capsys):
    def broken(self, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "_train_step", broken)
    argv = ["textgen", "train", *_cli_args(tiny), "--out", str(tmp_path / "a")]
    monkeypatch.delenv("LSTMKIT_DEBUG", raising=False)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "unexpected error: RuntimeError: boom (set LSTMKIT_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("LSTMKIT_DEBUG", "1")
    assert main([*argv[:-1], str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and 'raise RuntimeError("boom")' in err
    assert err.endswith("unexpected error: RuntimeError: boom (set LSTMKIT_DEBUG=1 for the traceback)\n")


def test_device_cpu_is_recorded_and_used(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["textgen", "train", *_cli_args(tiny), "--device", "cpu", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["device"] == "cpu"
    assert all(p.device.type == "cpu" for p in lstmkit.load(out).model.parameters())
    code = main(["textgen", "train", *_cli_args(tiny), "--device", "tpu", "--out", str(tmp_path / "bad")])
    assert code == 2 and capsys.readouterr().err.startswith("error: ")


def test_without_quiet_each_epoch_is_logged(tiny, tmp_path, capsys):
    settings = {k: v for k, v in tiny.items() if k not in ("quiet", "max_steps")} | {"epochs": 2}
    assert main(["textgen", "train", *_cli_args(settings), "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    epochs = [line for line in err.splitlines() if line.split(":")[0].endswith(("epoch 1", "epoch 2"))]
    assert len(epochs) == 2, err
    assert "train loss" in epochs[0] and "val loss" in epochs[0]
    assert "training on backend " in err
    quiet_err = (main(["textgen", "train", *_cli_args(tiny), "--out", str(tmp_path / "q")]), capsys.readouterr().err)
    assert quiet_err[0] == 0 and "epoch 1" not in quiet_err[1]
