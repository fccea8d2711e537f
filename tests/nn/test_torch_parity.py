"""lstmkit.LSTM / GRU / RNN held to PyTorch's own tests of torch.nn.LSTM / GRU / RNN.

A port of the substance of PyTorch's tests (test_nn's RNN tests, the ModuleInfo samples and error inputs of
torch/testing/_internal/common_modules.py, the autograd and jit cases): each case runs torch.nn's module as the
control, then lstmkit's with the same weights on every backend, and asserts what PyTorch's test asserts. A
backend is skipped only for what it declares it cannot run (backends.unsupported); auto runs every case.
"""

import itertools
import logging
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

import lstmkit
from lstmkit.backends import BACKEND_NAMES, unsupported

CLASSES = {"lstm": (nn.LSTM, lstmkit.LSTM), "gru": (nn.GRU, lstmkit.GRU), "rnn": (nn.RNN, lstmkit.RNN)}
TOL = {"atol": 2e-5, "rtol": 1e-4}  # float32: the backends' sums run in different orders


def _pair(cell: str, backend: str, *args, training: bool = False, **kwargs):
    """torch.nn's module (the control) and lstmkit's with the same weights on ``backend``; skips when the
    backend declares it cannot run the configuration."""
    torch_cls, ours_cls = CLASSES[cell]
    kwargs.setdefault("batch_first", False)  # torch's default, so that every call below is torch's call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        control = torch_cls(*args, **kwargs)
        ours = ours_cls(*args, backend=backend, **kwargs)
    if backend != "auto":
        reason = unsupported(backend, ours.spec, device=torch.device("cpu"), dtype=torch.float32, training=training)
        if reason is not None:
            pytest.skip(reason)
    ours.load_state_dict(control.state_dict())
    return control.train(training), ours.train(training)


def _close(ours, control):
    if isinstance(control, nn.utils.rnn.PackedSequence):
        assert isinstance(ours, nn.utils.rnn.PackedSequence)
        assert torch.equal(ours.batch_sizes, control.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(ours, name), getattr(control, name)
            assert (a is None and b is None) or torch.equal(a, b)
        ours, control = ours.data, control.data
    if isinstance(control, tuple):
        assert len(ours) == len(control)
        for a, b in zip(ours, control, strict=True):
            _close(a, b)
        return
    torch.testing.assert_close(ours, control, **TOL)


backends = pytest.mark.parametrize("backend", BACKEND_NAMES)


# ModuleInfo samples (common_modules.module_inputs_torch_nn_LSTM / _RNN_GRU): unbatched input, with and without
# a state, over bias x batch_first x bidirectional (x proj_size for LSTM), checked against torch and against the
# same input as a batch of one (its no_batch_dim reference)
def _configs(cell):
    flags = list(itertools.product((False, True), (False, True), (False, True)))
    if cell == "lstm":
        return [(b, bf, bi, p) for (b, bf, bi) in flags for p in (0, 2)]
    return [(b, bf, bi, 0) for (b, bf, bi) in flags]


@backends
@pytest.mark.parametrize(
    "cell, bias, batch_first, bidirectional, proj_size",
    [(cell, *config) for cell in CLASSES for config in _configs(cell)],
)
def test_unbatched_samples(backend, cell, bias, batch_first, bidirectional, proj_size):
    kwargs = {"num_layers": 2, "bias": bias, "batch_first": batch_first, "bidirectional": bidirectional}
    if proj_size:
        kwargs["proj_size"] = proj_size
    control, ours = _pair(cell, backend, 2, 3, **kwargs)
    x = torch.randn(4, 2)
    rows, out = (4 if bidirectional else 2), (proj_size or 3)
    h0 = (torch.randn(rows, out), torch.randn(rows, 3)) if cell == "lstm" else torch.randn(rows, 3)
    for args in ((x,), (x, h0)):
        expected = control(*args)
        got = ours(*args)
        _close(tuple(got[:1]) + (tuple(got[1]) if cell == "lstm" else (got[1],)),
               tuple(expected[:1]) + (tuple(expected[1]) if cell == "lstm" else (expected[1],)))
        batched_x = x.unsqueeze(0 if batch_first else 1)
        batched_h = None if len(args) == 1 else (
            tuple(s.unsqueeze(1) for s in h0) if cell == "lstm" else h0.unsqueeze(1)
        )
        y_batched, _ = ours(batched_x, batched_h)
        torch.testing.assert_close(got[0], y_batched.squeeze(0 if batch_first else 1), **TOL)


# PackedSequence in and out (module_inputs ... with_packed_sequence, test_nn's test_variable_sequence and
# test_pack_sequence): outputs, final states and gradients against torch, lengths sorted or not
@backends
@pytest.mark.parametrize("cell", list(CLASSES))
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence(backend, cell, enforce_sorted, bidirectional):
    control, ours = _pair(cell, backend, 2, 3, num_layers=2, bidirectional=bidirectional)
    lengths = torch.tensor([5, 3, 3, 2, 2]) if enforce_sorted else torch.tensor([2, 5, 3, 2, 3])
    x = torch.randn(5, 5, 2)
    results = []
    for module in (control, ours):
        xi = x.clone().requires_grad_()
        packed = pack_padded_sequence(xi, lengths, enforce_sorted=enforce_sorted)
        y, state = module(packed)
        assert isinstance(y, nn.utils.rnn.PackedSequence)
        h = state[0] if cell == "lstm" else state
        padded, out_lengths = pad_packed_sequence(y)
        assert torch.equal(out_lengths, lengths)
        (padded.square().sum() + h.sum()).backward()
        grads = [xi.grad, *(p.grad for p in module.parameters())]
        results.append((y, h, grads))
    (y_t, h_t, g_t), (y_o, h_o, g_o) = results
    _close(y_o, y_t)
    _close(h_o, h_t)
    _close(tuple(g_o), tuple(g_t))


@backends
def test_packed_sequence_with_initial_state_in_caller_order(backend):
    """test_nn's test_rnn_initial_hidden_state over a packed batch: hx is in the caller's (unsorted) order."""
    control, ours = _pair("lstm", backend, 2, 3)
    lengths = torch.tensor([2, 4, 3])
    seqs = [torch.randn(n, 2) for n in lengths.tolist()]
    packed = nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    hx = [torch.randn(1, 3, 3), torch.randn(1, 3, 3)]  # a list, as torch accepts
    expected_y, expected_state = control(packed, tuple(hx))
    y, state = ours(packed, hx)
    _close(y, expected_y)
    _close(tuple(state), tuple(expected_state))
    padded = pad_sequence(seqs)                                                # (T, B, I), time-major
    _, state_lengths = ours(padded, hx, lengths=lengths)                     # lstmkit's lengths= agrees
    _close(tuple(state_lengths), tuple(expected_state))


# autograd: test_nn's gradcheck of the RNN modules, in float64 on the backends that run it
@pytest.mark.parametrize("backend", ["auto", "torch", "reference"])
@pytest.mark.parametrize("cell", list(CLASSES))
def test_gradcheck(backend, cell):
    ours_cls = CLASSES[cell][1]
    ours = ours_cls(2, 3, num_layers=2, bidirectional=True, backend=backend, dtype=torch.float64)
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    state = (h, torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)) if cell == "lstm" else h

    def fn(x, *state):
        y, final = ours(x, state if cell == "lstm" else state[0])
        return (y, *final) if cell == "lstm" else (y, final)

    assert torch.autograd.gradcheck(fn, (x, *(state if cell == "lstm" else (state,))))


# test_nn's test_RNN_dropout and test_RNN_change_dropout: dropout sits between layers; p = 0 (or evaluation)
# changes nothing, p = 1 zeroes the input of the layer above; and the probability can be changed afterwards
@backends
@pytest.mark.parametrize("p", [0.0, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_between_layers(backend, p, training):
    control, ours = _pair("lstm", backend, 10, 8, 2, bias=False, dropout=p, training=training)
    x = torch.randn(4, 3, 10)
    _close(ours(x)[0], control(x)[0])


@backends
def test_change_dropout_after_construction(backend):
    control, ours = _pair("lstm", backend, 10, 8, 2, training=True)
    x = torch.randn(4, 3, 10)
    for p in (0.0, 1.0, 0.0):
        control.dropout, ours.dropout = p, p
        _close(ours(x)[0], control(x)[0])
    with pytest.raises(ValueError):
        ours.dropout = 1.5


def test_partial_dropout_scales_what_it_keeps():
    """test_RNN_dropout's middle probabilities: every unit reaching the next layer is 0 or scaled by 1/(1-p)."""
    p = 0.276
    rnn = lstmkit.RNN(10, 1000, 2, bias=False, dropout=p, backend="reference", batch_first=False)
    with torch.no_grad():
        for w in rnn.parameters():
            w.fill_(1.0)
        rnn.weight_ih_l1.fill_(1e-4)                      # keeps layer 2 in tanh's linear range
    y, _ = rnn.train()(torch.ones(1, 1, 10), torch.zeros(2, 1, 1000))
    kept = torch.atanh(y[0, 0, 0].double()) * (1 - p) / (1e-4 * torch.tanh(torch.tensor(10.0)).double())
    assert 600 < kept.item() < 850
    assert abs(kept.item() - round(kept.item())) < 2e-2


# argument checks (RNNBase.__init__ and module_error_inputs_torch_nn_RNN_GRU): the same exception types
@pytest.mark.parametrize("cell", list(CLASSES))
@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"hidden_size": 0}, ValueError),
        ({"num_layers": 0}, ValueError),
        ({"input_size": 0}, ValueError),
        ({"hidden_size": 3.0}, TypeError),
        ({"input_size": "2"}, TypeError),
        ({"bias": "False"}, TypeError),
        ({"batch_first": "False"}, TypeError),
        ({"dropout": 1.5}, ValueError),
        ({"dropout": -0.1}, ValueError),
        ({"dropout": True}, ValueError),
        ({"dropout": "0.1"}, ValueError),
    ],
)
def test_construction_errors_have_torch_types(cell, kwargs, error):
    torch_cls, ours_cls = CLASSES[cell]
    args = {"input_size": 2, "hidden_size": 3, **kwargs}
    with pytest.raises(error):
        torch_cls(**args)
    with pytest.raises(error) as caught:
        ours_cls(**args)
    assert isinstance(caught.value, lstmkit.LstmkitError)


@pytest.mark.parametrize("proj_size, error", [(-1, ValueError), (3, ValueError), (5, ValueError)])
def test_projection_errors_have_torch_types(proj_size, error):
    with pytest.raises(error):
        nn.LSTM(2, 3, proj_size=proj_size)
    with pytest.raises(error):
        lstmkit.LSTM(2, 3, proj_size=proj_size)


@pytest.mark.parametrize("cell", list(CLASSES))
def test_dropout_range_and_warning_are_torch_s(cell):
    torch_cls, ours_cls = CLASSES[cell]
    for module_cls in (torch_cls, ours_cls):
        module_cls(2, 3, num_layers=2, dropout=1.0)  # [0, 1] closed, as torch
        with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
            module_cls(2, 3, num_layers=1, dropout=0.5)


# forward errors (RNNBase.check_forward_args, LSTM.forward, the dtype error input)
def _forward_errors(cell):
    h = (lambda *s: (torch.zeros(*s), torch.zeros(*s))) if cell == "lstm" else torch.zeros
    return [
        ((torch.randn(3, 4, 5),), RuntimeError),                      # input_size 2, got 5
        ((torch.randn(3),), ValueError),                              # 1-D
        ((torch.randn(2, 3, 4, 2),), ValueError),                     # 4-D
        ((torch.randn(3, 4, 2), h(1, 4, 3)), RuntimeError),           # 2 layers, state for 1
        ((torch.randn(3, 4, 2), h(2, 5, 3)), RuntimeError),           # batch 4, state for 5
        ((torch.randn(3, 4, 2), h(2, 4, 7)), RuntimeError),           # hidden 3, state of 7
        ((torch.randn(3, 2), h(2, 1, 3)), RuntimeError),              # unbatched input, batched state
        ((torch.randn(3, 4, 2, dtype=torch.float64),), ValueError),   # float64 into float32 weights
    ]


@backends
@pytest.mark.parametrize("cell", list(CLASSES))
def test_forward_errors_have_torch_types(backend, cell):
    control, ours = _pair(cell, backend, 2, 3, num_layers=2)
    for args, error in _forward_errors(cell):
        with pytest.raises(error):
            control(*args)
        with pytest.raises(error) as caught:
            ours(*args)
        assert isinstance(caught.value, lstmkit.LstmkitError), args


# the attributes and methods code written against torch.nn.LSTM touches
@pytest.mark.parametrize("cell", list(CLASSES))
def test_attributes_and_methods(cell):
    torch_cls, ours_cls = CLASSES[cell]
    kwargs = {"num_layers": 2, "bidirectional": True, "bias": False}
    control, ours = torch_cls(2, 3, **kwargs), ours_cls(2, 3, **kwargs)
    for name in ("mode", "input_size", "hidden_size", "num_layers", "bias", "dropout", "bidirectional",
                 "proj_size", "_flat_weights_names", "_all_weights"):
        assert getattr(ours, name) == getattr(control, name), name
    ours.load_state_dict(control.state_dict())
    assert [[tuple(p.shape) for p in ps] for ps in ours.all_weights] == [
        [tuple(p.shape) for p in ps] for ps in control.all_weights
    ]
    assert all(p is q for p, q in zip(ours._flat_weights, ours.parameters(), strict=True))
    for layer in ours.all_weights:                  # an init loop as users write it
        for w in layer:
            nn.init.constant_(w, 0.25)
    assert all(bool((p == 0.25).all()) for p in ours.parameters())
    ours.flatten_parameters()
    ours(torch.randn(4, 2, 2))


# jit: tracing, scripting, compiling and exporting a model holding the layer give correct results for inputs
# other than the one they were made with, on every backend
class _Model(nn.Module):
    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y)


@backends
def test_jit_trace_follows_new_inputs(backend, caplog):
    _, ours = _pair("lstm", backend, 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    example, later = torch.randn(4, 5, 2), torch.randn(4, 5, 2)
    with caplog.at_level(logging.INFO, logger="lstmkit"), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    torch.testing.assert_close(traced(later), model(later), **TOL)
    torch.testing.assert_close(traced(example), model(example), **TOL)
    if backend not in ("torch", "reference"):
        assert sum("under tracing, export or compile" in r.message for r in caplog.records) <= 1


@pytest.mark.parametrize("cell", list(CLASSES))
def test_jit_script(cell):
    _, ours = _pair(cell, "auto", 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(4, 5, 2)
    torch.testing.assert_close(scripted(x), model(x), **TOL)


@backends
def test_torch_compile(backend):
    _, ours = _pair("lstm", backend, 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=False)
    for _ in range(2):
        x = torch.randn(4, 5, 2)
        torch.testing.assert_close(compiled(x), model(x), **TOL)


@backends
def test_onnx_export_records_a_traceable_backend(backend, tmp_path):
    pytest.importorskip("onnx", reason="torch.onnx.export writes through the onnx package")
    _, ours = _pair("lstm", backend, 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    seen = []
    ours.register_forward_hook(lambda *_: seen.append(torch.onnx.is_in_onnx_export()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(4, 5, 2),), str(tmp_path / "model.onnx"), dynamo=False)
    assert seen and all(seen)
    graph = (tmp_path / "model.onnx").read_bytes()
    assert b"LSTM" in graph or b"Sigmoid" in graph  # the recurrence itself, not a constant output


@pytest.mark.parametrize("backend", ["auto", "torch", "fused"])
def test_onnx_export_runs_in_onnx_runtime_on_other_shapes(backend, tmp_path):
    # the reference backend is left out: traced, its Python loop over steps fixes the length of the sequence
    pytest.importorskip("onnx", reason="torch.onnx.export writes through the onnx package")
    ort = pytest.importorskip("onnxruntime")
    _, ours = _pair("lstm", backend, 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(4, 5, 2),), str(tmp_path / "model.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "batch", 1: "steps"}})
    x = torch.randn(3, 7, 2)
    got = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"x": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), atol=1e-5, rtol=1e-4)


@backends
def test_torch_export_follows_new_inputs(backend):
    """torch.export (what the ONNX exporter builds on) records the recurrence, not the example's outputs."""
    _, ours = _pair("lstm", backend, 2, 3, num_layers=2, batch_first=True)
    model = _Model(ours).eval()
    exported = torch.export.export(model, (torch.randn(4, 5, 2),)).module()
    later = torch.randn(4, 5, 2)
    torch.testing.assert_close(exported(later), model(later), **TOL)
