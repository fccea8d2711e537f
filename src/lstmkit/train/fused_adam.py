"""Adam and AdamW whose step on CPU float32 parameters is one call into lstmkit's compiled extension.

torch.optim.Adam with its state, its options and its state_dict (checkpoints move freely between the two);
only the update runs elsewhere (backends/csrc/optim.cpp). On the small models people train on CPUs the
per-tensor bookkeeping of torch's implementations (Python, and one parallel region per parameter) costs
more than the arithmetic: for an LSTM(50) -> Dense(1) in a training loop, about 110 microseconds a step
against 40-65 here (the call itself about 10). The
step falls back to torch's own (fused where it can) for anything else: other devices or dtypes, amsgrad,
maximize, a tensor learning rate, a closure, a GradScaler's scale, or no extension.
"""

import torch

from ..backends import extension


def _torch_step_needed(group: dict, params: list[torch.Tensor]) -> bool:
    if group["amsgrad"] or group["maximize"] or group["differentiable"] or group["capturable"]:
        return True
    if any(torch.is_tensor(v) for v in (group["lr"], *group["betas"])):
        return True
    for p in params:
        g = p.grad
        if p.device.type != "cpu" or p.dtype != torch.float32 or not p.is_contiguous():
            return True
        if g.is_sparse or g.dtype != torch.float32 or not g.is_contiguous():
            return True
    return False


class FusedAdam(torch.optim.Adam):
    """torch.optim.Adam (AdamW with ``decoupled_weight_decay=True``) with the CPU step described above, and
    a ``zero_grad`` without torch's profiler bookkeeping (a few microseconds instead of about thirty)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        return None

    @torch.no_grad()
    def step(self, closure=None):
        groups = [(group, [p for p in group["params"] if p.grad is not None]) for group in self.param_groups]
        scaled = getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None
        if closure is not None or scaled or any(_torch_step_needed(g, ps) for g, ps in groups):
            return super().step(closure)
        ext = extension.load()
        if ext is None:
            return super().step(closure)
        calls = []
        for group, params in groups:
            exp_avgs, exp_avg_sqs, steps = [], [], []
            for p in params:
                state = self.state[p]
                if not state:  # as torch initialises it, so that either implementation can take it over
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            calls.append((group, params, exp_avgs, exp_avg_sqs, steps))
        moments = [t for call in calls for t in (*call[2], *call[3])]
        if not all(t.dtype == torch.float32 and t.is_contiguous() for t in moments):
            return super().step(closure)  # a state loaded in another layout
        for group, params, exp_avgs, exp_avg_sqs, steps in calls:
            beta1, beta2 = group["betas"]
            ext.adam_step(
                params, [p.grad for p in params], exp_avgs, exp_avg_sqs, steps, group["lr"], beta1, beta2,
                group["eps"], group["weight_decay"], group["decoupled_weight_decay"],
            )
        return None
