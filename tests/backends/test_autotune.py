import logging

import pytest
import torch

from lstmkit import LSTM
from lstmkit.backends import autotune, extension, plan

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(extension.unavailable_reason() is not None, reason="no fused extension")


@pytest.fixture
def measuring(monkeypatch, tmp_path):
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    monkeypatch.setattr(autotune, "_store", lambda: str(tmp_path / "autotune.json"))
    autotune.forget()
    monkeypatch.setattr(autotune, "_loaded", False)
    yield tmp_path
    autotune.forget()


class FakeClock:
    """Backends that "take" a set number of seconds per call, on a clock that only they advance."""

    def __init__(self, monkeypatch, costs: dict[str, float]) -> None:
        self.now, self.costs = 0.0, costs
        monkeypatch.setattr(autotune.time, "perf_counter", lambda: self.now)

    def runners(self):
        def runner(name):
            def run(*args, **kwargs):
                self.now += self.costs[name]
                return torch.zeros(1, 1, 1), ()
            return run
        return {name: runner(name) for name in ("torch", "fused")}


def test_auto_takes_the_backend_measured_faster_and_remembers(measuring, monkeypatch, caplog):
    spec = LSTM(3, 4).spec
    clock = FakeClock(monkeypatch, {"torch": 2.0, "fused": 1.0})
    with caplog.at_level(logging.INFO, logger="lstmkit"), torch.no_grad():
        assert autotune.choose(spec, 5, 9, training=False, runners=clock.runners()) == "fused"
    assert "measured fused 1000.00 ms, torch 2000.00 ms for batch 8 x 16 steps; using 'fused'" in caplog.text
    clock.costs["torch"] = 0.5  # a shape in the same buckets is not measured again
    with torch.no_grad():
        assert autotune.choose(spec, 7, 12, training=False, runners=clock.runners()) == "fused"
    assert (measuring / "autotune.json").is_file()


def test_torch_is_kept_unless_fused_wins_by_the_margin(measuring, monkeypatch):
    clock = FakeClock(monkeypatch, {"torch": 1.0, "fused": 0.97})  # 3% is within the noise: keep torch
    with torch.no_grad():
        assert autotune.choose(LSTM(3, 4).spec, 4, 4, training=False, runners=clock.runners()) == "torch"


def test_measuring_leaves_the_random_stream_as_it_was(measuring):
    # timing draws inputs, weights and dropout masks; a seeded run must not depend on whether it measured
    spec = LSTM(3, 4, dropout=0.5, num_layers=2).spec
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    autotune.choose(spec, 4, 6, training=True, runners={"torch": _torch_run(), "fused": _torch_run()})
    assert torch.equal(torch.rand(5), expected)


def test_select_measures_only_where_both_can_run(measuring):
    # real measurement on a tiny stack: the answer is one of the two, and it is what forward then uses
    spec = LSTM(3, 4).spec
    with torch.no_grad():
        name = plan("auto", spec, device=CPU, training=False, shape=(2, 5)).name
    assert name in ("torch", "fused")
    assert plan("auto", LSTM(3, 4, zoneout=0.1).spec, device=CPU, training=True, shape=(2, 5)).name == "fused"
    assert plan("auto", LSTM(3, 4, proj_size=2).spec, device=CPU, training=True, shape=(2, 5)).name == "torch"


def test_choices_are_kept_per_build_of_the_extension(monkeypatch, tmp_path):
    # what an older build of the kernels measured says nothing about a newer one
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "1")
    monkeypatch.delenv("LSTMKIT_AUTOTUNE_CACHE", raising=False)
    monkeypatch.setenv("LSTMKIT_EXTENSIONS_DIR", str(tmp_path))
    spec = LSTM(3, 4).spec
    try:
        for build, costs, want in (("old", {"torch": 2.0, "fused": 1.0}, "fused"),
                                   ("new", {"torch": 1.0, "fused": 2.0}, "torch")):
            monkeypatch.setattr(extension, "build_name", lambda build=build: build)
            autotune.forget()
            monkeypatch.setattr(autotune, "_loaded", False)
            clock = FakeClock(monkeypatch, costs)
            with torch.no_grad():
                assert autotune.choose(spec, 5, 9, training=False, runners=clock.runners()) == want
            assert (tmp_path / build / "autotune.json").is_file()
    finally:
        autotune.forget()


def _torch_run():
    from lstmkit.backends import torch_nn

    return torch_nn.run
