"""The contract every registered task keeps, in the spirit of scikit-learn's check_estimator: fit a tiny model
on the task's own example data, save, load through ``lstmkit.load`` with identical predictions, resume an
interrupted run to the weights of an uninterrupted one, run the command line's dry run, and refuse a bad
input with exit status 2, one line and nothing written. A new task gets these tests by registering."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit
from lstmkit import LstmkitError
from lstmkit.cli.main import main
from lstmkit.tasks import registry
from lstmkit.train.engine import Trainer

TASKS = registry.TASK_NAMES


def _same(a, b) -> bool:
    """Exact equality of predictions, whatever their type."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    return a == b


def _weights(run) -> dict[str, torch.Tensor]:
    models = getattr(run, "models", None) or {"model": run.model}
    return {f"{name}.{k}": v for name, model in models.items() for k, v in model.state_dict().items()}


def _cli_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, tuple):
            args += [flag, ",".join(map(str, value))]
        else:
            args += [flag, str(value)]
    return args


@pytest.fixture(params=TASKS)
def task(request):
    return registry.get(request.param)


# "auto" as users get it (measured on this machine) and "fused" named: the two a default run can train on
TRAINING_BACKENDS = ("auto", "fused")


def _on(task, settings: dict, backend: str) -> dict:
    """The example's settings on ``backend``; a task without a backend setting runs on auto only."""
    if "model" not in task.sections(task.default_config()):
        if backend != "auto":
            pytest.skip(f"the {task.name} task has no backend setting: its stacks run on auto")
        return settings
    return {**settings, "backend": backend}


def _check_recorded_backend(folder, backend: str) -> None:
    """config.json and metrics.json name the backend that trained the run, and why."""
    config = json.loads((folder / "config.json").read_text())
    if "model" not in config:
        return  # the memory experiment: several models, each its own run, no model section or metrics.json
    metrics = json.loads((folder / "metrics.json").read_text())
    recorded = config["model"]["backend_used"]
    assert recorded == metrics["run"]["backend"]
    if backend == "auto":
        assert recorded in ("torch", "fused"), recorded
        assert metrics["run"]["backend_reason"].startswith("auto: "), metrics["run"]
    else:
        assert recorded == backend and metrics["run"]["backend_reason"] == "named"


@pytest.mark.parametrize("backend", TRAINING_BACKENDS)
def test_fit_save_load_predict_identically(task, backend, tmp_path):
    example = task.example(tmp_path)
    run = task.train(out=tmp_path / "run", **_on(task, example.settings, backend))
    _check_recorded_backend(tmp_path / "run", backend)
    loaded = lstmkit.load(tmp_path / "run")
    assert type(loaded) is type(run)
    assert loaded.config == run.config and isinstance(loaded.metrics, dict) and loaded.metrics
    assert isinstance(loaded.model, torch.nn.Module)
    assert _same(run.predict(*example.inputs), loaded.predict(*example.inputs))
    assert sorted(_weights(run)) == sorted(_weights(loaded))
    for name, tensor in _weights(run).items():
        assert torch.equal(tensor, _weights(loaded)[name]), name


def test_a_run_of_another_task_is_refused_naming_both(task, tmp_path):
    example = task.example(tmp_path)
    task.train(out=tmp_path / "run", **example.settings)
    for other in registry.all_tasks():
        if other.name != task.name:
            with pytest.raises(LstmkitError) as err:
                other.load(tmp_path / "run")
            assert f"is a {task.name} run, not a {other.name} run" in str(err.value)


@pytest.mark.parametrize("backend", TRAINING_BACKENDS)
def test_interrupted_run_resumes_to_the_uninterrupted_weights(task, backend, tmp_path, monkeypatch):
    example = task.example(tmp_path)
    settings = _on(task, example.settings, backend)
    full = task.train(out=tmp_path / "full", **settings)

    real_step, calls = Trainer._train_step, []

    def interrupted_step(self, batch):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", interrupted_step)
    try:
        task.train(out=tmp_path / "part", **settings)
    except KeyboardInterrupt:
        pass  # a task whose runs are several trainings stops on it; the others save and return
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    assert len(calls) == 5
    resumed = task.train(out=tmp_path / "part", resume=True, **settings)  # the same command, resumed
    _check_recorded_backend(tmp_path / "part", backend)
    want, got = _weights(full), _weights(lstmkit.load(tmp_path / "part"))
    assert sorted(want) == sorted(got)
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert _same(full.predict(*example.inputs), resumed.predict(*example.inputs))


def test_resume_refuses_a_changed_setting_naming_both_values(task, tmp_path):
    example = task.example(tmp_path)
    task.train(out=tmp_path / "run", **example.settings)
    with pytest.raises(LstmkitError) as err:
        task.train(out=tmp_path / "run", resume=True, hidden_size=example.settings["hidden_size"] + 1)
    size = example.settings["hidden_size"]
    assert str(err.value).startswith("a resumed run keeps its configuration; only ")
    assert str(err.value).endswith(f"got: hidden_size was {size}, now {size + 1}")


def test_cli_dry_run_writes_a_loadable_run(task, tmp_path, capsys):
    example = task.example(tmp_path)
    out = tmp_path / "dry"
    code = main([*task.command, "--dry-run", "--out", str(out), *_cli_args(example.settings)])
    assert code == 0, capsys.readouterr().err
    assert type(lstmkit.load(out)) is type(task.load(out))


def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(task, tmp_path, capsys):
    example = task.example(tmp_path)
    out = tmp_path / "bad"
    code = main([*task.command, "--out", str(out), *_cli_args(example.bad_settings)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {example.bad_message}") and err.count("\n") == 1
    assert not out.exists()
