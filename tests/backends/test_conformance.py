"""The one suite every backend passes against the reference: outputs and gradients, random shapes,
both directions, variable lengths, projections, all three cells. fp32 tolerances are asserted here."""

import random

import pytest
import torch

from lstmkit import GRU, LSTM, RNN, BackendUnsupported
from lstmkit.backends import BACKENDS, plan, unsupported

FAST_BACKENDS = [name for name in BACKENDS if name != "reference"]
ATOL, RTOL = 1e-5, 1e-4  # fp32
STACKS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def _cases(n: int = 14, seed: int = 1234):
    rng = random.Random(seed)
    cases = []
    for k in range(n):
        mode = ("lstm", "gru", "rnn")[k % 3]
        hidden = rng.randint(2, 9)
        cases.append(
            dict(
                mode=mode,
                input_size=rng.randint(1, 7),
                hidden=hidden,
                layers=rng.randint(1, 3),
                bidirectional=rng.random() < 0.5,
                proj=rng.randint(1, hidden - 1) if mode == "lstm" and hidden > 2 and rng.random() < 0.4 else 0,
                batch=rng.randint(1, 5),
                steps=rng.randint(1, 8),
                lengths=rng.random() < 0.5,
                initial_state=rng.random() < 0.5,
                seed=rng.randint(0, 10**6),
            )
        )
    return cases


CASES = _cases()


def _skip_unless_runs(backend, spec, training=True):
    reason = unsupported(backend, spec, device=torch.device("cpu"), training=training)
    if reason is not None:
        pytest.skip(reason)  # what a backend declares it cannot run is tested in test_select.py


def _skip_if_unsupported(backend, cls, case):
    spec = cls(case["input_size"], case["hidden"], bidirectional=case["bidirectional"], proj_size=case["proj"]).spec
    _skip_unless_runs(backend, spec)


def _run(module, x, state, lengths):
    y, final = module(x, state, lengths)
    finals = tuple(final) if isinstance(final, tuple) else (final,)
    # a random linear read-out of everything, so every output and state entry gets a gradient
    gen = torch.Generator().manual_seed(7)
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (y, *finals))
    leaves = [x, *(state if isinstance(state, tuple) else [state] if state is not None else []), *module.parameters()]
    grads = torch.autograd.grad(loss, leaves, allow_unused=False)
    return y, finals, grads


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda c: (
        f"{c['mode']}-L{c['layers']}-{'bi' if c['bidirectional'] else 'uni'}-p{c['proj']}"
        f"-{'len' if c['lengths'] else 'full'}"
    ),
)
def test_backend_matches_reference(backend, case):
    torch.manual_seed(case["seed"])
    cls = STACKS[case["mode"]]
    _skip_if_unsupported(backend, cls, case)
    module = cls(
        case["input_size"],
        case["hidden"],
        num_layers=case["layers"],
        bidirectional=case["bidirectional"],
        proj_size=case["proj"],
        backend="reference",
    )
    x = torch.randn(case["batch"], case["steps"], case["input_size"], requires_grad=True)
    lengths = torch.randint(1, case["steps"] + 1, (case["batch"],)) if case["lengths"] else None
    state = None
    if case["initial_state"]:
        rows = case["layers"] * (2 if case["bidirectional"] else 1)
        h0 = torch.randn(rows, case["batch"], case["proj"] or case["hidden"], requires_grad=True)
        state = (
            (h0, torch.randn(rows, case["batch"], case["hidden"], requires_grad=True)) if case["mode"] == "lstm" else h0
        )

    y_ref, finals_ref, grads_ref = _run(module, x, state, lengths)
    module.backend = backend
    y, finals, grads = _run(module, x, state, lengths)

    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=RTOL)
    for got, want in zip(finals, finals_ref, strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backend_matches_reference_in_eval_mode_with_dropout(backend):
    # dropout and recurrent dropout are training-time only: in eval mode every backend must agree exactly
    torch.manual_seed(3)
    module = LSTM(
        4, 6, num_layers=3, dropout=0.5, recurrent_dropout=0.3, bidirectional=True, backend="reference"
    ).eval()
    _skip_unless_runs(backend, module.spec, training=False)
    x = torch.randn(2, 5, 4)
    y_ref, s_ref = module(x)
    module.backend = backend
    y, s = module(x)
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(s.c, s_ref.c, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_backend_declares_what_it_cannot_run(backend):
    # a backend either runs recurrent dropout while training or says so; never silently ignores it
    module = LSTM(3, 4, recurrent_dropout=0.25)
    reason = unsupported(backend, module.spec, device=torch.device("cpu"), training=True)
    if reason is not None:
        with pytest.raises(BackendUnsupported):
            plan(backend, module.spec, device=torch.device("cpu"), training=True)
    else:
        module.backend = backend
        x = torch.randn(2, 6, 3)
        y_train, _ = module.train()(x)
        y_eval, _ = module.eval()(x)
        assert not torch.allclose(y_train, y_eval)


@pytest.mark.parametrize("backend", ["reference", *FAST_BACKENDS])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_backend_agrees_with_torch_nn_lstm(backend, bidirectional):
    torch.manual_seed(5)
    ours = LSTM(6, 8, num_layers=2, bidirectional=bidirectional, backend=backend)
    _skip_unless_runs(backend, ours.spec)
    theirs = torch.nn.LSTM(6, 8, num_layers=2, bidirectional=bidirectional, batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 6)
    y, (h, c) = ours(x)
    y_t, (h_t, c_t) = theirs(x)
    for got, want in ((y, y_t), (h, h_t), (c, c_t)):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: c["mode"])
def test_cuda_torch_backend_matches_cpu_reference(case):
    torch.manual_seed(case["seed"])
    module = STACKS[case["mode"]](
        case["input_size"],
        case["hidden"],
        num_layers=case["layers"],
        bidirectional=case["bidirectional"],
        proj_size=case["proj"],
        backend="reference",
    )
    x = torch.randn(case["batch"], case["steps"], case["input_size"])
    y_ref, _ = module(x)
    module.to("cuda").backend = "torch"
    y, _ = module(x.cuda())
    torch.testing.assert_close(y.cpu(), y_ref, atol=1e-4, rtol=1e-3)  # TF32 and cuDNN summation order
