"""The fused backend against the reference, feature by feature, and its build and fallback rules.

Tolerances: float32, atol 1e-5 / rtol 1e-4 (as the conformance suite); with layer normalisation atol 1e-4 /
rtol 1e-3, because normalising divides by a standard deviation that can be small and so amplifies the
rounding differences of two correct float32 implementations.
"""

import logging
import random
import shutil

import pytest
import torch
from reference_check import TOL, TOL_LAYER_NORM, assert_matches_reference, module_for, outputs_and_grads

from lstmkit import LSTM, BackendUnsupported, LstmkitError
from lstmkit.backends import _fallbacks_logged, extension, plan

CPU = torch.device("cpu")

needs_extension = pytest.mark.skipif(
    extension.unavailable_reason() is not None, reason=f"{extension.unavailable_reason()}"
)


def _cases(n: int = 24, seed: int = 99):
    rng = random.Random(seed)
    cases = []
    for k in range(n):
        cases.append(
            dict(
                input_size=rng.randint(1, 6),
                hidden=rng.randint(1, 9),
                layers=rng.randint(1, 3),
                bidirectional=rng.random() < 0.5,
                batch=rng.randint(1, 5),
                steps=rng.randint(1, 9),
                lengths=rng.random() < 0.5,
                initial_state=rng.random() < 0.5,
                dropout=rng.choice([0.0, 0.3]),
                recurrent_dropout=rng.choice([0.0, 0.25]),
                zoneout=rng.choice([0.0, 0.2]),
                layer_norm=k % 3 == 0,
                training=k % 2 == 0,
                seed=rng.randint(0, 10**6),
            )
        )
    return cases


def _case_id(c):
    features = [f for f in ("dropout", "recurrent_dropout", "zoneout", "layer_norm", "lengths") if c[f]]
    mode = "train" if c["training"] else "eval"
    return f"L{c['layers']}-{'bi' if c['bidirectional'] else 'uni'}-{mode}-" + ("+".join(features) or "plain")


@needs_extension
@pytest.mark.parametrize("case", _cases(), ids=_case_id)
def test_fused_matches_reference(case):
    assert_matches_reference(module_for(case), case, "fused")


# Shapes past the small ones above, so that every blocking of the kernels' small matrix product runs: blocks
# of six rows and the leftover one, three and five, 64-, 48-, 32- and 16-column blocks of the zero-padded
# matrices; and both one-product paths: a projection past the small size, and a layer past it altogether.
WIDE = [
    dict(batch=13, steps=4, input_size=5, hidden=37, layers=1),    # 148 gate columns: 64 + 64 + 32 padded
    dict(batch=6, steps=3, input_size=3, hidden=12, layers=2),     # 48 = 3 x 16; 12 columns backward
    dict(batch=9, steps=3, input_size=4, hidden=24, layers=1),     # 96 = 64 + 32; 24 padded to 32 backward
    dict(batch=40, steps=5, input_size=3, hidden=25, layers=1),    # enough work to split the batch over threads
    dict(batch=5, steps=3, input_size=1100, hidden=16, layers=1),  # 64 x 1100 input weights: projected at once
    dict(batch=5, steps=3, input_size=4, hidden=130, layers=1),    # 520 x 130 weights: past the small product
    dict(batch=9, steps=60, input_size=20, hidden=130, layers=1),  # 540 rows: split by rows, 256-row tiles
    dict(batch=110, steps=2, input_size=3, hidden=130, layers=1),  # 55+ rows a step: 256-column tiles
]



@needs_extension
@pytest.mark.parametrize("shape", WIDE, ids=lambda s: f"B{s['batch']}-H{s['hidden']}")
def test_fused_matches_reference_on_wider_layers(shape):
    case = dict(
        shape, bidirectional=True, lengths=False, initial_state=True, dropout=0.0, recurrent_dropout=0.25,
        zoneout=0.0, layer_norm=False, training=True, seed=5,
    )
    assert_matches_reference(module_for(case), case, "fused")


# The common case (one direction; no recurrent dropout, zoneout or padding) runs as one autograd node built in
# C++, forward and backward; the cases above mostly take the per-layer path. Checked here on its own.
def _stack_cases(n: int = 12, seed: int = 7):
    rng = random.Random(seed)
    return [
        dict(
            input_size=rng.randint(1, 6), hidden=rng.randint(1, 9), layers=rng.randint(1, 3), bidirectional=False,
            batch=rng.randint(1, 5), steps=rng.randint(1, 9), lengths=False, initial_state=rng.random() < 0.5,
            dropout=rng.choice([0.0, 0.3]), recurrent_dropout=0.0, zoneout=0.0, layer_norm=k % 3 == 0,
            training=k % 2 == 0, seed=rng.randint(0, 10**6),
        )
        for k in range(n)
    ]


ONE_NODE = "torch::autograd::CppNode<StackFunction>"


@needs_extension
@pytest.mark.parametrize("case", _stack_cases(), ids=_case_id)
def test_fused_one_node_stack_matches_reference(case):
    module = module_for(case)
    module.backend = "fused"
    y, (h_n, _) = module(torch.randn(case["batch"], case["steps"], case["input_size"], requires_grad=True))
    assert y.grad_fn.name() == h_n.grad_fn.name() == ONE_NODE
    module.backend = "reference"
    assert_matches_reference(module, case, "fused")


@needs_extension
def test_fused_one_node_stack_without_biases_and_with_part_of_the_outputs():
    # no biases; the input takes no gradient; only the last step's output is read (h_n, c_n get none)
    torch.manual_seed(4)
    module = LSTM(3, 7, num_layers=2, bias=False, backend="reference")
    x = torch.randn(4, 5, 3)
    grads = []
    for backend in ("reference", "fused"):
        module.backend = backend
        y, _ = module(x)
        grads.append(torch.autograd.grad(y[:, -1].square().sum(), list(module.parameters())))
    assert y.grad_fn.name() == ONE_NODE  # the fused run, last in the loop
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, **TOL)


@needs_extension
@pytest.mark.parametrize("layers", [1, 2])
def test_fused_one_node_stack_refuses_an_in_place_change_of_its_output(layers):
    # y is a view of a tensor the backward reads: changing it in place must raise, not corrupt the gradients
    module = LSTM(3, 5, num_layers=layers, backend="fused")
    y, _ = module(torch.randn(2, 4, 3))
    assert y.grad_fn.name() == ONE_NODE
    with pytest.raises(RuntimeError, match="modified inplace"):
        y.mul_(2)


# bf16 mixed precision (autocast): past the small-matrix size the matrix products run in bfloat16, whose 8-bit
# mantissa holds about 3 significant digits; the gate maths stay in float32. Checked against the float32
# reference with this looser, stated tolerance, relative to each tensor's size. Small layers stay float32
# under autocast (their products are faster in float32 inside the time loop), so they match float32 exactly.
TOL_BF16 = dict(atol=3e-2, rtol=3e-2)


def _fused_fp32_and_bf16(case):
    module = module_for(case)
    x = torch.randn(case["batch"], case["steps"], case["input_size"], requires_grad=True)
    want = outputs_and_grads(module, x, None, None, case["seed"])
    module.backend = "fused"
    fp32 = outputs_and_grads(module, x, None, None, case["seed"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = outputs_and_grads(module, x, None, None, case["seed"])
    names = ["y", "h_n", "c_n", "x", *(n for n, _ in module.named_parameters())]
    return names, want, fp32, bf16


@needs_extension
@pytest.mark.parametrize("case", _cases()[:8], ids=_case_id)
def test_fused_small_layers_stay_float32_under_bf16_autocast(case):
    names, _, fp32, bf16 = _fused_fp32_and_bf16(case)
    for name, b, f in zip(names, bf16, fp32, strict=True):
        assert b.dtype == torch.float32, name  # the layer hands float32 back under autocast
        assert torch.equal(b, f), name


LARGER_BF16 = [
    dict(batch=4, steps=6, input_size=8, hidden=130),
    # an odd number of units (the bfloat16 pairs end in a half-filled word), several blocks of rows split over
    # the threads, and gate columns that end in a part of a vector
    dict(batch=23, steps=5, input_size=7, hidden=131),
    dict(batch=9, steps=4, input_size=5, hidden=130, recurrent_dropout=0.3, zoneout=0.2, layer_norm=True),
]


@needs_extension
@pytest.mark.parametrize("shape", LARGER_BF16, ids=lambda s: f"B{s['batch']}-H{s['hidden']}-ln{s.get('layer_norm', 0)}")
def test_fused_bf16_products_of_a_larger_layer_stay_close_to_float32(shape):
    # past the small-matrix size the input projection, the recurrent products and the weight gradients run
    # in bfloat16 under autocast
    case = dict(
        layers=1, bidirectional=False, dropout=0.0, recurrent_dropout=0.0, zoneout=0.0, layer_norm=False,
        training=True, seed=3,
    ) | shape
    names, want, fp32, bf16 = _fused_fp32_and_bf16(case)
    for name, g, w in zip(names, bf16, want, strict=True):
        assert g.dtype == torch.float32, name
        scale = max(1.0, float(w.detach().abs().max()))  # gradients summed over many steps: relative to their size
        torch.testing.assert_close(g / scale, w / scale, **TOL_BF16, msg=lambda m, name=name: f"{name}: {m}")
    # and bfloat16 really was used: not bit-identical to the fused backend in float32
    assert not torch.equal(bf16[0], fp32[0])


@needs_extension
def test_fused_training_masks_really_differ_from_evaluation():
    module = LSTM(3, 6, zoneout=0.3, recurrent_dropout=0.3, backend="fused")
    x = torch.randn(2, 7, 3)
    y_train, _ = module.train()(x)
    y_eval, _ = module.eval()(x)
    assert not torch.allclose(y_train, y_eval)


# Without gradients the forward keeps nothing for a backward, and with enough rows a thread (16) it projects
# the input step by step whatever the layer's size: both the one-node stack and the per-layer path.
INFERENCE = [
    dict(batch=40, hidden=130, layers=2, bidirectional=False, layer_norm=False, zoneout=0.0, lengths=False),
    dict(batch=40, hidden=130, layers=1, bidirectional=False, layer_norm=True, zoneout=0.0, lengths=False),
    dict(batch=40, hidden=70, layers=2, bidirectional=True, layer_norm=False, zoneout=0.2, lengths=True),
    dict(batch=3, hidden=130, layers=2, bidirectional=False, layer_norm=False, zoneout=0.0, lengths=False),
]


@needs_extension
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", INFERENCE, ids=lambda s: f"B{s['batch']}-H{s['hidden']}-L{s['layers']}")
def test_fused_inference_matches_reference(shape, threads):
    torch.manual_seed(3)
    module = module_for(
        dict(shape, input_size=45, dropout=0.3, recurrent_dropout=0.25, training=False, seed=11)
    ).eval()
    x = torch.randn(shape["batch"], 7, 45)
    lengths = torch.randint(1, 8, (shape["batch"],)) if shape["lengths"] else None
    tol = TOL_LAYER_NORM if shape["layer_norm"] else TOL
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            want = module(x, lengths=lengths)
            module.backend = "fused"
            got = module(x, lengths=lengths)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(got, want, **tol)


@needs_extension
@pytest.mark.parametrize("layer_norm", [False, True])
def test_fused_traces_match_reference(layer_norm):
    torch.manual_seed(0)
    module = LSTM(4, 5, num_layers=2, bidirectional=True, layer_norm=layer_norm, backend="reference").eval()
    x, lengths = torch.randn(3, 6, 4), torch.tensor([6, 2, 4])
    _, _, want = module.trace(x, lengths=lengths)
    module.backend = "fused"
    _, _, got = module.trace(x, lengths=lengths)
    for name in ("i", "f", "g", "o", "c"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), **TOL_LAYER_NORM)


@needs_extension
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("zoneout", [0.0, 0.25])
def test_step_matches_forward(batch, zoneout):
    torch.manual_seed(1)
    module = LSTM(7, 33, num_layers=3, zoneout=zoneout).eval()
    x = torch.randn(batch, 9, 7)
    with torch.no_grad():
        y, (h_n, c_n) = module(x)
        state, steps = None, []
        for t in range(9):
            h, state = module.step(x[:, t], state)
            steps.append(h)
    torch.testing.assert_close(torch.stack(steps, 1), y, **TOL)
    torch.testing.assert_close(state.h, h_n, **TOL)
    torch.testing.assert_close(state.c, c_n, **TOL)


def test_step_falls_back_to_forward_with_gradients_and_refuses_bidirectional():
    torch.manual_seed(2)
    module = LSTM(3, 4, layer_norm=True)
    x = torch.randn(2, 3, requires_grad=True)
    h, state = module.step(x)
    y, (h_n, _) = module(x[:, None])
    torch.testing.assert_close(h, y[:, 0])
    torch.testing.assert_close(state.h, h_n)
    h.sum().backward()
    assert x.grad is not None
    with pytest.raises(LstmkitError) as err:
        LSTM(3, 4, bidirectional=True).step(x)
    assert str(err.value) == "LSTM.step needs a unidirectional stack: a reverse direction needs the whole sequence"


def test_fused_declines_what_it_does_not_run():
    assert plan("auto", LSTM(3, 4, proj_size=2, zoneout=0.1).spec, device=CPU, training=True).name == "reference"
    with pytest.raises(BackendUnsupported) as err:
        LSTM(3, 4, proj_size=2, backend="fused")(torch.randn(1, 2, 3))
    assert str(err.value) == (
        "backend 'fused' cannot run this configuration: the fused backend has no projection (proj_size)"
    )


@needs_extension
def test_loading_the_extension_again_finds_the_same_build():
    # the build's name hashes the compiler flags: building must not change them (a rebuild in every process)
    name = extension.build_name()
    extension.reset()
    assert extension.load() is not None
    assert extension.build_name() == name
    assert extension.load().__name__ == name


def test_two_installs_of_the_same_sources_build_apart(monkeypatch, tmp_path):
    # the build rules name the sources by path: sharing one build folder, two installs would rebuild it in turn
    names = []
    for place in ("a", "a", "b"):
        folder = tmp_path / place
        if not folder.exists():
            shutil.copytree(extension.CSRC, folder)
        monkeypatch.setattr(extension, "CSRC", folder)
        monkeypatch.setattr(extension, "SOURCES", sorted(folder.glob("*.cpp")))
        names.append(extension.build_name())
    assert names[0] == names[1] != names[2]


def test_without_the_extension_auto_falls_back_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setenv("LSTMKIT_NO_EXTENSION", "1")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    extension.reset()
    _fallbacks_logged.clear()
    try:
        module = LSTM(3, 4, zoneout=0.2)
        with caplog.at_level(logging.INFO, logger="lstmkit"):
            for _ in range(2):
                y, _ = module(torch.randn(2, 5, 3))
        assert y.shape == (2, 5, 4)
        assert [r.getMessage() for r in caplog.records] == [
            "backend 'auto': the torch backend has no zoneout; falling back from 'torch'",
            "backend 'auto': the C++ extension is disabled by LSTMKIT_NO_EXTENSION; falling back from 'fused'",
            "backend 'auto': the triton backend runs on CUDA devices, not cpu (on the CPU only with "
            "TRITON_INTERPRET=1); falling back from 'triton'",
        ]
        with pytest.raises(BackendUnsupported) as err:
            LSTM(3, 4, backend="fused")(torch.randn(1, 2, 3))
        assert "the C++ extension is disabled by LSTMKIT_NO_EXTENSION" in str(err.value)
    finally:
        monkeypatch.delenv("LSTMKIT_NO_EXTENSION")
        extension.reset()


def test_a_failed_build_is_reported_not_raised(monkeypatch):
    def broken_build():
        raise RuntimeError("Error building extension 'lstmkit_fused': c++: fatal error\nmore lines")

    monkeypatch.setattr(extension, "_build", broken_build)
    extension.reset()
    try:
        assert extension.load() is None
        assert extension.unavailable_reason() == (
            "the fused extension failed to build: Error building extension 'lstmkit_fused': c++: fatal error"
        )
    finally:
        monkeypatch.undo()
        extension.reset()


def test_the_extension_builds_on_this_machine():
    # CI installs the project as the README says (ninja comes with it) and has a compiler: the fused
    # backend must really be there, not silently fall back
    assert extension.unavailable_reason() is None
