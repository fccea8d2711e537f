import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmkit import LSTM
from lstmkit.config import TrainConfig
from lstmkit.data import Batch
from lstmkit.train import Trainer, write_folder
from lstmkit.train.checkpoint import load_tensors, optimizer_from_tensors, optimizer_to_tensors


class SumModel(nn.Module):
    """Predicts the sum of a sequence from the LSTM's last output; dropout makes the RNG matter."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = LSTM(1, 8, num_layers=2, dropout=0.3)
        self.out = nn.Linear(8, 1)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.out(y[:, -1]).squeeze(-1)


class SumObjective:
    def outputs(self, model, batch):
        return model(batch.inputs)

    def loss(self, outputs, batch):
        return F.mse_loss(outputs, batch.targets)

    def items(self, batch):
        return len(batch)

    def evaluate(self, model, data, device):
        return {"loss": float(F.mse_loss(model(data.inputs.to(device)), data.targets.to(device)))}


class SumData:
    def __init__(self, n=64, steps=5, batch_size=8, seed=0, interrupt_at=None):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, steps, 1, generator=gen)
        self.y = self.x.sum((1, 2))
        self.batch_size, self.interrupt_at, self.served = batch_size, interrupt_at, 0

    def __len__(self):
        return len(self.x) // self.batch_size

    def epoch(self, generator):
        order = torch.randperm(len(self.x), generator=generator)
        for k in range(len(self)):
            if self.interrupt_at is not None and self.served == self.interrupt_at:
                raise KeyboardInterrupt
            self.served += 1
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            yield Batch(self.x[idx], self.y[idx])

    def as_batch(self):
        return Batch(self.x, self.y)


def _config(**changes):
    base = dict(epochs=3, lr=0.01, quiet=True, patience=None, restore_best=False, device="cpu")
    return TrainConfig(**{**base, **changes})


def _trainer(config, folder=None, seed=0):
    torch.manual_seed(seed)
    save = (lambda files: write_folder(folder, files)) if folder is not None else None
    return Trainer(SumModel(), SumObjective(), config, save=save)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_reduces_the_loss(optimizer):
    data = SumData()
    trainer = _trainer(_config(optimizer=optimizer, epochs=6, lr=0.01 if optimizer != "sgd" else 0.05))
    before = trainer.evaluate(data.as_batch())["loss"]
    result = trainer.fit(data, data.as_batch())
    assert result.metrics["val"]["loss"] < 0.5 * before
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5, 6]


def test_max_steps_stops_exactly_and_still_reports_validation():
    data = SumData()
    result = _trainer(_config(max_steps=5)).fit(data, data.as_batch())
    assert result.state.step == 5 and result.state.stop_reason == "max_steps"
    assert math.isfinite(result.metrics["val"]["loss"]) and result.metrics["run"]["steps"] == 5


def test_early_stopping_counts_epochs_without_improvement():
    data = SumData()
    result = _trainer(_config(epochs=20, patience=2, min_delta=1e9)).fit(data, data.as_batch())
    assert result.state.stop_reason == "early_stopping" and result.state.epoch == 3


def test_gradient_clipping_bounds_each_update():
    data = SumData()
    trainer = _trainer(_config(optimizer="sgd", lr=1.0, momentum=0.0, grad_clip=1e-3, max_steps=1))
    before = torch.cat([p.detach().clone().flatten() for p in trainer.model.parameters()])
    trainer.fit(data, data.as_batch())
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert float((after - before).norm()) <= 1e-3 + 1e-7


class ScriptedObjective(SumObjective):
    """Validation losses follow a script; the weights seen at each evaluation are kept."""

    def __init__(self, losses):
        self.losses, self.seen = list(losses), []

    def evaluate(self, model, data, device):
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"loss": self.losses[len(self.seen) - 1]}


def test_restore_best_ends_on_the_best_epoch():
    data = SumData()
    objective = ScriptedObjective([1.0, 0.5, 0.9])
    torch.manual_seed(0)
    trainer = Trainer(SumModel(), objective, _config(restore_best=True))
    result = trainer.fit(data, data.as_batch())
    assert result.metrics["val"] == {"loss": 0.5} and result.metrics["run"]["weights"] == "best_epoch"
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, objective.seen[1][name])


def _final_weights(folder):
    return load_tensors(folder / "checkpoint" / "last_model.safetensors")


@pytest.mark.parametrize("schedule", ["constant", "cosine", "plateau"])
@pytest.mark.parametrize("stop", ["max_steps", "interrupted"])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, stop, schedule):
    full = tmp_path / "full"
    _trainer(_config(lr_schedule=schedule), full).fit(SumData(), SumData().as_batch())

    part = tmp_path / "part"
    if stop == "max_steps":
        first = _trainer(_config(max_steps=11, lr_schedule=schedule), part).fit(SumData(), SumData().as_batch())
    else:
        first = _trainer(_config(lr_schedule=schedule), part).fit(SumData(interrupt_at=11), SumData().as_batch())
    assert first.state.stop_reason == stop and first.state.step == 11

    resumed = _trainer(
        _config(lr_schedule=schedule), part, seed=999
    )  # different initial weights: everything must come from disk
    state = resumed.restore(part)
    assert state.step == 11 and state.epoch == 1 and state.batch_in_epoch == 3
    result = resumed.fit(SumData(), SumData().as_batch())
    assert result.state.step == 24 and result.state.stop_reason == "epochs"
    want, got = _final_weights(full), _final_weights(part)
    for name in want:
        assert torch.equal(got[name], want[name]), name
    assert [r["train_loss"] for r in result.history] == pytest.approx(
        [r["train_loss"] for r in _load_history(full)], rel=1e-6
    )


def _load_history(folder):
    import json

    return json.loads((folder / "history.json").read_text())


def test_run_folder_contents(tmp_path):
    folder = tmp_path / "run"
    _trainer(_config(epochs=2), folder).fit(SumData(), SumData().as_batch())
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == [
        "checkpoint/last_model.safetensors",
        "checkpoint/optimizer.safetensors",
        "checkpoint/rng.safetensors",
        "checkpoint/trainer.json",
        "history.csv",
        "history.json",
        "metrics.json",
        "model.safetensors",
    ]
    header = (folder / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,step,train_loss,val_loss,lr,seconds"


def test_optimizer_state_round_trips_through_safetensors():
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, plain = optimizer_to_tensors(opt.state_dict())
    restored = optimizer_from_tensors(tensors, plain)
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(restored)
    for pid, values in opt.state_dict()["state"].items():
        for name, value in values.items():
            assert torch.equal(fresh.state_dict()["state"][pid][name], value)


def test_predict_concatenates_batches():
    data = SumData()
    trainer = _trainer(_config())
    out = trainer.predict(data.epoch(torch.Generator().manual_seed(0)))
    assert out.shape == (64,)


def test_max_time_leaves_out_one_time_set_up(monkeypatch):
    # the first step "builds the extension" for 6 s: with max_time 5 s a run that counted it would stop after
    # that step; it reaches max_steps instead, and its seconds leave the build out
    from lstmkit.backends import extension
    from lstmkit.train import engine

    data, slept = SumData(), []

    def slow_first_outputs(model, batch):
        if not slept:
            time.sleep(6.0)
            extension.setup_seconds += 6.0
            slept.append(1)
        return model(batch.inputs)

    trainer = _trainer(_config(max_time=5.0, max_steps=2, epochs=1))
    monkeypatch.setattr(trainer.objective, "outputs", slow_first_outputs)
    monkeypatch.setattr(engine, "setup_seconds", lambda: extension.setup_seconds + 0.0)
    started = time.perf_counter()
    result = trainer.fit(data, data.as_batch())
    wall = time.perf_counter() - started
    assert result.state.stop_reason == "max_steps" and result.state.step == 2
    assert result.state.seconds <= wall - 6.0


def test_max_time_counts_the_whole_run_across_resumes(tmp_path):
    data = SumData()
    first = _trainer(_config(max_steps=3), tmp_path / "run").fit(data, data.as_batch())
    trainer = _trainer(_config(max_time=first.state.seconds / 2), tmp_path / "run")
    trainer.restore(tmp_path / "run")
    result = trainer.fit(data, data.as_batch())
    assert result.state.stop_reason == "max_time" and result.state.step == 3  # the budget was spent already
