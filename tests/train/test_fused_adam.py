"""FusedAdam against torch.optim.Adam: the same updates, state and state_dict, and torch's step where it
cannot run."""

import copy

import pytest
import torch
from torch.optim import optimizer as torch_optimizer

from lstmkit.backends import extension
from lstmkit.config import TrainConfig
from lstmkit.train.fused_adam import FusedAdam
from lstmkit.train.optim import build_optimizer

needs_extension = pytest.mark.skipif(
    extension.unavailable_reason() is not None, reason=f"{extension.unavailable_reason()}"
)
TOL = dict(atol=1e-5, rtol=1e-5)  # float32, the same maths in another order, after a few steps
# shapes of an LSTM(50) with a head, a vector, a scalar, and one past the size that is split across threads
SHAPES = [(200, 1), (200, 50), (200,), (1, 50), (), (300, 300)]


def _params(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen).requires_grad_() for shape in SHAPES]


def _run(cls, steps: int, seed: int = 0, skip: int | None = None, **options) -> tuple[list[torch.Tensor], dict]:
    params = _params(seed)
    opt = cls(params, **options)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        for k, p in enumerate(params):
            p.grad = None if k == skip else torch.randn(p.shape, generator=gen)
        opt.step()
    return params, opt.state_dict()


@needs_extension
@pytest.mark.parametrize(
    "options",
    [dict(lr=1e-3), dict(lr=3e-2, weight_decay=0.1), dict(lr=1e-2, weight_decay=0.05, decoupled_weight_decay=True),
     dict(lr=1e-3, betas=(0.8, 0.99), eps=1e-6)],
    ids=["plain", "weight-decay", "adamw", "betas-eps"],
)
def test_fused_adam_matches_torch_adam(options):
    got, got_state = _run(FusedAdam, 7, skip=3, **options)
    want, want_state = _run(torch.optim.Adam, 7, skip=3, **options)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **TOL)
    assert 3 not in got_state["state"]  # a parameter without gradients gets no state, as in torch
    for k, w in want_state["state"].items():
        for name in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(got_state["state"][k][name], w[name], **TOL)


@needs_extension
def test_fused_adam_state_dict_moves_between_the_implementations():
    # three steps here, the state into torch's Adam, two more there; and the other way round
    for first, second in ((FusedAdam, torch.optim.Adam), (torch.optim.Adam, FusedAdam)):
        params, state = _run(first, 3, lr=1e-2)
        opt = second(params, lr=1e-2)
        opt.load_state_dict(copy.deepcopy(state))  # loading keeps the tensors it is given
        gen = torch.Generator().manual_seed(9)
        for _ in range(2):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            opt.step()
        want, _ = _run(torch.optim.Adam, 3, lr=1e-2)
        ref = torch.optim.Adam(want, lr=1e-2)
        ref.load_state_dict(copy.deepcopy(state))
        gen = torch.Generator().manual_seed(9)
        for _ in range(2):
            for p in want:
                p.grad = torch.randn(p.shape, generator=gen)
            ref.step()
        for g, w in zip(params, want, strict=True):
            torch.testing.assert_close(g, w, **TOL)


@needs_extension
def test_fused_adam_tells_autograd_it_changed_the_parameters():
    w = torch.randn(3, requires_grad=True)
    loss = (w * w).sum()  # saves w for its backward
    w.grad = torch.ones(3)
    FusedAdam([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_fused_adam_runs_torch_step_for_what_it_does_not_cover():
    # float64 parameters, amsgrad and a closure take torch's own step, with the same results
    for options, dtype in ((dict(lr=1e-2), torch.float64), (dict(lr=1e-2, amsgrad=True), torch.float32)):
        results = []
        for cls in (FusedAdam, torch.optim.Adam):
            w = torch.linspace(-1, 1, 5, dtype=dtype).requires_grad_()
            opt = cls([w], **options)
            for _ in range(3):
                opt.zero_grad()
                opt.step(lambda w=w: (w**3).sum().backward())
            results.append(w.detach())
        torch.testing.assert_close(results[0], results[1])


def test_build_optimizer_gives_fused_adam_for_adam_and_adamw():
    w = [torch.nn.Parameter(torch.zeros(2))]
    adam = build_optimizer(w, TrainConfig(optimizer="adam", lr=1e-3, weight_decay=0.0))
    adamw = build_optimizer(w, TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=0.01))
    assert type(adam) is FusedAdam and not adam.param_groups[0]["decoupled_weight_decay"]
    assert type(adamw) is FusedAdam and adamw.param_groups[0]["decoupled_weight_decay"]


def test_fused_adam_zero_grad_clears_or_zeroes_the_gradients():
    w = torch.ones(3, requires_grad=True)
    opt = FusedAdam([w], lr=0.1)
    w.grad = torch.ones(3)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(w.grad, torch.zeros(3))
    opt.zero_grad()
    assert w.grad is None


@needs_extension
@pytest.mark.parametrize("scale, inf", [(4.0, 0.0), (1.0, 1.0)], ids=["scaled", "inf-skipped"])
def test_fused_adam_leaves_gradient_scaling_to_torch(scale, inf):
    # a GradScaler hands fused optimisers its scale and inf flag as attributes; torch's step unscales the
    # gradients (weight decay makes the step depend on their size) or skips the step on an inf
    results = []
    for cls in (FusedAdam, torch.optim.Adam):
        w = torch.linspace(-1, 1, 5).requires_grad_()
        opt = cls([w], lr=0.1, weight_decay=0.5, fused=True)
        w.grad = torch.full((5,), 4.0)
        opt.grad_scale, opt.found_inf = torch.tensor(scale), torch.tensor(inf)
        opt.step()
        results.append(w.detach())
    torch.testing.assert_close(results[0], results[1])
    assert torch.equal(results[0], torch.linspace(-1, 1, 5)) == bool(inf)


@needs_extension
def test_fused_adam_takes_a_state_in_another_layout():
    # moments loaded transposed (not contiguous): torch's step runs on them, with torch's results
    results = []
    for cls in (FusedAdam, torch.optim.Adam):
        w = torch.arange(6.0).reshape(2, 3).requires_grad_()
        opt = cls([w], lr=0.1)
        state = {"step": torch.tensor(1.0), "exp_avg": torch.ones(3, 2).t(), "exp_avg_sq": torch.ones(3, 2).t()}
        opt.load_state_dict({"state": {0: state}, "param_groups": opt.state_dict()["param_groups"]})
        w.grad = torch.ones(2, 3)
        opt.step()
        results.append(w.detach())
    torch.testing.assert_close(results[0], results[1])


@needs_extension
def test_fused_adam_runs_the_compiled_step(monkeypatch):
    # float32 CPU parameters never reach torch's step
    from lstmkit.train import fused_adam

    def torch_step(*args):
        raise AssertionError("torch's step ran")

    monkeypatch.setattr(fused_adam, "_ADAM_STEP", torch_step)
    w = torch.ones(4, requires_grad=True)
    opt = FusedAdam([w], lr=0.1)
    w.grad = torch.ones(4)
    opt.step()
    assert torch.allclose(w.detach(), torch.full((4,), 0.9))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["compiled", "torch-step"])
def test_fused_adam_runs_step_hooks_once_and_shows_in_the_profiler(dtype):
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch wraps Adam.step: no second round of hooks
    w = torch.ones(3, dtype=dtype, requires_grad=True)
    opt = FusedAdam([w], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda *_: calls.append("pre"))
    opt.register_step_post_hook(lambda *_: calls.append("post"))
    handle = torch_optimizer.register_optimizer_step_post_hook(lambda *_: calls.append("global"))
    try:
        w.grad = torch.ones(3, dtype=dtype)
        opt.step()
    finally:
        handle.remove()
    assert calls == ["pre", "post", "global"]
    w.grad = torch.ones(3, dtype=dtype)
    with torch.profiler.profile() as prof:
        opt.step()
    assert "Optimizer.step#FusedAdam.step" in {e.name for e in prof.events()}
    assert torch.allclose(w.detach(), torch.full((3,), 0.8, dtype=dtype))
