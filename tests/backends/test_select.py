"""backends.plan, the one backend decision for forward, trace, step and generate: what auto picks, how it
falls back, what a named backend refuses, and that nothing outside backends/ knows one backend from another."""

import ast
import dataclasses
import logging
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit import LSTM, BackendUnsupported, LstmkitError
from lstmkit.backends import BACKENDS, _fallbacks_logged, extension, plan, unsupported
from lstmkit.backends.spec import StackSpec

CPU = torch.device("cpu")
needs_extension = pytest.mark.skipif(
    extension.unavailable_reason() is not None, reason=f"{extension.unavailable_reason()}"
)


def test_auto_picks_torch_when_it_can():
    assert plan("auto", LSTM(3, 4).spec, device=CPU, training=True).name == "torch"


@needs_extension
def test_auto_falls_back_to_fused_and_logs_once(caplog):
    _fallbacks_logged.clear()
    spec = LSTM(3, 4, recurrent_dropout=0.2).spec
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        for _ in range(3):
            assert plan("auto", spec, device=CPU, training=True).name == "fused"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["backend 'auto': the torch backend has no recurrent dropout; falling back from 'torch'"]


def test_auto_falls_back_to_reference_where_nothing_else_runs(caplog):
    _fallbacks_logged.clear()
    spec = LSTM(3, 4, recurrent_dropout=0.2, proj_size=2).spec
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        assert plan("auto", spec, device=CPU, training=True).name == "reference"
    assert [r.getMessage() for r in caplog.records] == [
        "backend 'auto': the torch backend has no recurrent dropout; falling back from 'torch'",
        "backend 'auto': the fused backend has no projection (proj_size); falling back from 'fused'",
        "backend 'auto': the triton backend has no projection (proj_size); falling back from 'triton'",
    ]


def test_auto_uses_torch_for_recurrent_dropout_in_eval_mode():
    spec = LSTM(3, 4, recurrent_dropout=0.2).spec
    assert plan("auto", spec, device=CPU, training=False).name == "torch"


def test_a_refusal_names_every_option_missing():
    spec = LSTM(3, 4, recurrent_dropout=0.2, zoneout=0.1, layer_norm=True).spec
    assert unsupported("torch", spec, device=CPU, training=True) == (
        "the torch backend has no recurrent dropout, zoneout or layer normalisation"
    )


def test_named_backend_that_cannot_run_raises():
    module = LSTM(3, 4, recurrent_dropout=0.2, backend="torch")
    with pytest.raises(BackendUnsupported) as err:
        module(torch.randn(2, 5, 3))
    assert str(err.value) == "backend 'torch' cannot run this configuration: the torch backend has no recurrent dropout"


def test_unknown_backend_is_refused_at_construction():
    with pytest.raises(LstmkitError) as err:
        LSTM(3, 4, backend="cudnn-magic")
    assert str(err.value) == "unknown backend 'cudnn-magic'; choose one of: auto, torch, fused, triton, reference"


# a StackSpec that has grown an option no backend declares yet
_GrownSpec = dataclasses.make_dataclass(
    "_GrownSpec", [("weight_tying", bool, dataclasses.field(default=False))], bases=(StackSpec,), frozen=True
)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_backend_refuses_an_option_it_does_not_declare(name):
    spec = _GrownSpec("lstm", 3, 4, weight_tying=True)
    assert unsupported(name, spec, device=CPU, training=True) == f"the {name} backend has no weight_tying"
    # at its default the option is not in use, and changes nothing
    assert unsupported(name, _GrownSpec("lstm", 3, 4), device=CPU, training=True) == unsupported(
        name, StackSpec("lstm", 3, 4), device=CPU, training=True
    )


def test_auto_refuses_an_option_no_backend_declares():
    with pytest.raises(BackendUnsupported) as err:
        plan("auto", _GrownSpec("lstm", 3, 4, weight_tying=True), device=CPU, training=True)
    assert str(err.value) == (
        "backend 'auto' found no backend to run this configuration: the reference backend has no weight_tying"
    )


def test_a_stack_in_float64_runs_on_the_reference_not_inside_fused(caplog):
    _fallbacks_logged.clear()
    spec = LSTM(3, 4, zoneout=0.1).spec
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        assert plan("auto", spec, device=CPU, dtype=torch.float64, training=True).name == "reference"
    assert "backend 'auto': the fused backend's kernels take float32 parameters, not float64; falling back from " \
        "'fused'" in [r.getMessage() for r in caplog.records]
    with pytest.raises(BackendUnsupported) as err:
        LSTM(3, 4, backend="fused").double()(torch.randn(1, 2, 3, dtype=torch.float64))
    assert str(err.value) == (
        "backend 'fused' cannot run this configuration: the fused backend's kernels take float32 parameters, "
        "not float64"
    )
    y, _ = LSTM(3, 4, zoneout=0.1).double()(torch.randn(1, 2, 3, dtype=torch.float64))
    assert y.dtype == torch.float64


@needs_extension
def test_trace_uses_fused_where_it_runs_else_the_reference():
    spec = LSTM(3, 4).spec
    assert plan("auto", spec, device=CPU, training=False, purpose="trace").name == "fused"
    assert plan("auto", LSTM(3, 4, proj_size=2).spec, device=CPU, training=False, purpose="trace").name == "reference"
    assert plan("reference", spec, device=CPU, training=False, purpose="trace").name == "reference"


@needs_extension
def test_a_named_backend_that_keeps_no_gates_leaves_the_trace_to_auto(caplog):
    _fallbacks_logged.clear()
    with caplog.at_level(logging.INFO, logger="lstmkit"):
        chosen = plan("torch", LSTM(3, 4).spec, device=CPU, training=False, purpose="trace")
    assert chosen.name == "fused"
    assert [r.getMessage() for r in caplog.records] == [
        "backend 'torch' records no gate traces; tracing with backend 'auto'"
    ]
    _, _, trace = LSTM(3, 4, backend="torch").eval().trace(torch.randn(2, 5, 3))
    assert trace.i.shape == (1, 1, 2, 5, 4)


@needs_extension
def test_step_and_generate_are_one_call_on_fused_where_it_can():
    spec = LSTM(3, 4).spec
    for purpose in ("step", "generate"):
        with torch.no_grad():
            chosen = plan("auto", spec, device=CPU, training=False, purpose=purpose)
        assert (chosen.name, chosen.one_call) == ("fused", True)
        # with gradients the step is a one-step sequence through the run's choice (torch here)
        chosen = plan("auto", spec, device=CPU, training=False, purpose=purpose)
        assert (chosen.name, chosen.one_call) == ("torch", False)
        # a named backend keeps its name, with or without a one-call path
        chosen = plan("reference", spec, device=CPU, training=False, purpose=purpose)
        assert (chosen.name, chosen.one_call) == ("reference", False)
    with pytest.raises(BackendUnsupported):
        plan("fused", LSTM(3, 4, proj_size=2).spec, device=CPU, training=False, purpose="step")


def test_a_plan_without_one_call_generation_refuses_to_sample():
    chosen = plan("torch", LSTM(3, 4).spec, device=CPU, training=False, purpose="generate")
    with pytest.raises(LstmkitError) as err:
        chosen.sample([], None, None, None, None, None, None)
    assert str(err.value) == "this plan ('generate' on backend 'torch') has no one-call generation"


def test_unknown_purpose_is_refused():
    with pytest.raises(LstmkitError) as err:
        plan("auto", LSTM(3, 4).spec, device=CPU, training=False, purpose="export")
    assert str(err.value) == "unknown purpose 'export'; choose one of: run, trace, step, generate"


def test_nn_knows_no_backend_by_name():
    # nn/ asks backends.plan and uses what it returns; it neither imports a backend module nor names one
    backend_modules = {m.__name__.rsplit(".", 1)[-1] for m in BACKENDS.values()} | {"autotune", "extension"}
    for path in sorted((Path(lstmkit.__file__).parent / "nn").glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and "backends" in (node.module or ""):
                named = {a.name for a in node.names} | set((node.module or "").split("."))
                assert not named & backend_modules, f"{where} imports a backend module"
            if isinstance(node, ast.Name | ast.Attribute):
                assert (getattr(node, "id", None) or node.attr) not in backend_modules, f"{where} names a backend"
            if isinstance(node, ast.Constant) and id(node) not in docstrings:
                assert node.value not in BACKENDS or node.value == "torch", f"{where} compares with {node.value!r}"
