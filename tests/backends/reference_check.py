"""Shared by the fast backends' tests: a random LSTM run on the reference, and everything to compare."""

import torch

from lstmkit import LSTM

TOL = {"atol": 1e-5, "rtol": 1e-4}             # float32
TOL_LAYER_NORM = {"atol": 3e-4, "rtol": 1e-3}  # normalising divides by a std that can be small; on AVX2
# without AVX-512 the products sum in another order, and one weight gradient of 64 differed by 1.8e-4


def module_for(case):
    """An LSTM with the case's features on the reference backend (switch ``backend`` to compare)."""
    torch.manual_seed(case["seed"])
    module = LSTM(
        case["input_size"], case["hidden"], num_layers=case["layers"], bidirectional=case["bidirectional"],
        dropout=case["dropout"], recurrent_dropout=case["recurrent_dropout"], zoneout=case["zoneout"],
        layer_norm=case["layer_norm"], backend="reference",
    )
    with torch.no_grad():  # layer-norm gains away from their initial ones, so that their role is tested
        for name, p in module.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    return module.train(case["training"])


def outputs_and_grads(module, x, state, lengths, seed):
    """y, h_n, c_n and the gradients of a random read-out of them with respect to x, the state and every
    parameter."""
    torch.manual_seed(seed)  # the same masks for both backends: they draw them in the same order
    y, (h, c) = module(x, state, lengths)
    gen = torch.Generator().manual_seed(7)
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (y, h, c))
    leaves = [x, *(state or ()), *module.parameters()]
    return [y, h, c, *torch.autograd.grad(loss, leaves)]


def assert_matches_reference(module, case, backend):
    """Runs the case's random input (lengths and initial state as the case says) through ``module`` on the
    reference, then on ``backend``, and asserts that outputs and gradients agree to the float32 tolerances."""
    x = torch.randn(case["batch"], case["steps"], case["input_size"], requires_grad=True)
    lengths = torch.randint(1, case["steps"] + 1, (case["batch"],)) if case["lengths"] else None
    state = None
    if case["initial_state"]:
        rows = case["layers"] * (2 if case["bidirectional"] else 1)
        shape = (rows, case["batch"], case["hidden"])
        state = (torch.randn(shape, requires_grad=True), torch.randn(shape, requires_grad=True))
    want = outputs_and_grads(module, x, state, lengths, case["seed"])
    module.backend = backend
    got = outputs_and_grads(module, x, state, lengths, case["seed"])
    tol = TOL_LAYER_NORM if case["layer_norm"] else TOL
    names = ["y", "h_n", "c_n", "x", *(["h0", "c0"] if state else []), *(n for n, _ in module.named_parameters())]
    for name, g, w in zip(names, got, want, strict=True):
        torch.testing.assert_close(g, w, **tol, msg=lambda m, name=name: f"{name}: {m}")
