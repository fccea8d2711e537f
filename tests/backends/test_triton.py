"""The triton backend against the reference, feature by feature, run on CPU tensors by Triton's interpreter
(TRITON_INTERPRET=1, set per test here, so other modules see the backend as it is without it); and its
refusal to run on the CPU otherwise.

Tolerances: float32, atol 1e-5 / rtol 1e-4 (as the conformance suite); with layer normalisation atol 1e-4 /
rtol 1e-3, because normalising divides by a standard deviation that can be small and so amplifies the
rounding differences of two correct float32 implementations. The interpreter runs each kernel program in
Python: shapes stay tiny.
"""

import importlib.util
import logging
import random
import sys

import pytest
import torch
from reference_check import TOL_LAYER_NORM, assert_matches_reference, module_for

from lstmkit import GRU, LSTM, BackendUnsupported
from lstmkit.backends import _fallbacks_logged, extension, plan, reference, triton_gpu, unsupported

CPU = torch.device("cpu")

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

FEATURES = {
    "plain": {},
    "recurrent_dropout": {"recurrent_dropout": 0.25},
    "zoneout-train": {"zoneout": 0.2},
    "zoneout-eval": {"zoneout": 0.2, "training": False},
    "layer_norm": {"layer_norm": True},
    "lengths": {"lengths": True},
    "bidirectional": {"bidirectional": True},
    "two_layers-dropout": {"layers": 2, "dropout": 0.3},
    "everything": {
        "layers": 2, "bidirectional": True, "dropout": 0.3, "recurrent_dropout": 0.25, "zoneout": 0.2,
        "layer_norm": True, "lengths": True,
    },
}


def _case(name: str) -> dict:
    rng = random.Random(name)
    case = dict(
        input_size=rng.randint(1, 4), hidden=rng.randint(3, 6), batch=rng.randint(2, 3), steps=rng.randint(3, 5),
        layers=1, bidirectional=False, dropout=0.0, recurrent_dropout=0.0, zoneout=0.0, layer_norm=False,
        lengths=False, training=True, initial_state=name != "plain", seed=rng.randint(0, 10**6),
    )
    case.update(FEATURES[name])
    return case


@pytest.fixture
def interpreter(monkeypatch):
    if "torch._dynamo" in sys.modules:
        # torch.compile loads Triton with its interpreter off for the rest of the process (tests/nn run it);
        # the default order runs this module first
        pytest.skip("Triton's interpreter cannot be switched on after torch.compile loaded Triton; "
                    "run this module before tests/nn or on its own")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


@needs_triton
@pytest.mark.usefixtures("interpreter")
@pytest.mark.parametrize("name", list(FEATURES))
def test_triton_matches_reference(name):
    case = _case(name)
    module = module_for(case)
    assert plan("triton", module.spec, device=CPU, training=case["training"]).backend is triton_gpu
    assert_matches_reference(module, case, "triton")


@needs_triton
@pytest.mark.usefixtures("interpreter")
def test_triton_traces_match_reference():
    torch.manual_seed(0)
    module = LSTM(3, 4, bidirectional=True, layer_norm=True, zoneout=0.2).eval()
    x, lengths = torch.randn(2, 3, 3), torch.tensor([3, 1])
    state = (torch.zeros(2, 2, 4), torch.zeros(2, 2, 4))
    traces = []
    for backend in (reference, triton_gpu):
        trace: dict[str, list[torch.Tensor]] = {k: [] for k in "ifgoc"}
        with torch.no_grad():
            backend.run(module.spec, x, state, module.cell_weights(), lengths, False, trace)
        traces.append(trace)
    want, got = traces
    for key in "ifgoc":
        for g, w in zip(got[key], want[key], strict=True):
            torch.testing.assert_close(g, w, **TOL_LAYER_NORM, msg=lambda m, key=key: f"{key}: {m}")


def test_triton_declines_the_cpu_without_the_interpreter(monkeypatch, caplog):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    spec = LSTM(3, 4, zoneout=0.1).spec
    reason = "the triton backend runs on CUDA devices, not cpu (on the CPU only with TRITON_INTERPRET=1)"
    assert unsupported("triton", spec, device=CPU, training=True) == reason
    with pytest.raises(BackendUnsupported) as err:
        LSTM(3, 4, zoneout=0.1, backend="triton")(torch.randn(1, 2, 3))
    assert str(err.value) == f"backend 'triton' cannot run this configuration: {reason}"
    # even with nothing else but the reference able to run it, auto does not take triton on the CPU
    monkeypatch.setenv("LSTMKIT_NO_EXTENSION", "1")
    extension.reset()
    _fallbacks_logged.clear()
    try:
        with caplog.at_level(logging.INFO, logger="lstmkit"):
            assert plan("auto", spec, device=CPU, training=True).name == "reference"
        assert f"backend 'auto': {reason}; falling back from 'triton'" in [r.getMessage() for r in caplog.records]
    finally:
        monkeypatch.delenv("LSTMKIT_NO_EXTENSION")
        extension.reset()


def test_triton_declines_what_it_does_not_run():
    cuda = torch.device("cuda")
    assert unsupported("triton", LSTM(3, 4, proj_size=2).spec, device=cuda, training=True) == (
        "the triton backend has no projection (proj_size)"
    )
    assert unsupported("triton", GRU(3, 4).spec, device=cuda, training=True) == (
        "the triton backend runs LSTM layers only"
    )
