"""Adam and AdamW whose step on CPU float32 parameters is one call into lstmkit's compiled extension.

torch.optim.Adam with its state, its options and its state_dict (checkpoints move freely between the two);
only the update runs elsewhere (backends/csrc/optim.cpp). On the small models people train on CPUs the
per-tensor bookkeeping of torch's implementations (Python, and one parallel region per parameter) costs
more than the arithmetic, which one compiled call over all the tensors avoids. The step falls back to torch's own (fused
where it can) for anything else: other devices or dtypes, amsgrad, maximize, a tensor learning rate, a
closure, a GradScaler's scale, or no extension. The compiled call checks the tensors and declines,
changing nothing, when one does not suit it.

torch wraps every optimiser's ``step`` in a profiler range and its step hooks; here those run only when
there is something to run (a hook registered, the profiler on), which on small models is a visible share of
a step.
"""

import torch
from torch.optim import optimizer as _optimizer

from ..backends import extension

# torch's Adam.step without the hook wrapper torch puts on the class once an Adam is made (this class runs those)
_ADAM_STEP = torch.optim.Adam.step
_ADAM_STEP = getattr(_ADAM_STEP, "__wrapped__", _ADAM_STEP) if getattr(_ADAM_STEP, "hooked", False) else _ADAM_STEP


def _torch_step_needed(group: dict) -> bool:
    """Options only torch's step implements."""
    if group["amsgrad"] or group["maximize"] or group["differentiable"] or group["capturable"]:
        return True
    return any(torch.is_tensor(v) for v in (group["lr"], *group["betas"]))


class FusedAdam(torch.optim.Adam):
    """torch.optim.Adam (AdamW with ``decoupled_weight_decay=True``) with the CPU step described above, and
    a ``zero_grad`` without torch's profiler bookkeeping."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        return None

    def step(self, closure=None):
        hooks = (
            self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
            or _optimizer._global_optimizer_pre_hooks or _optimizer._global_optimizer_post_hooks
        )
        if hooks or torch._C._autograd._profiler_enabled():
            return _hooked_step(self, closure)
        return self._step(closure)

    step.hooked = True  # torch.optim.Optimizer wraps any step without this mark; this one wraps itself

    def _step(self, closure=None):
        if closure is None and self._fused_step():
            return None
        return _ADAM_STEP(self, closure)

    def _fused_step(self) -> bool:
        """The compiled update of every parameter with a gradient; False (nothing changed) where torch's step
        must run instead."""
        if getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None:
            return False  # a GradScaler's: torch's step unscales the gradients or skips on an inf
        ext = extension.load()
        if ext is None or any(_torch_step_needed(group) for group in self.param_groups):
            return False
        params, grads, exp_avgs, exp_avg_sqs, steps, groups = [], [], [], [], [], []
        for group in self.param_groups:
            count = 0
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                if not state:  # as torch initialises it, so that either implementation can take it over
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
                count += 1
            beta1, beta2 = group["betas"]
            options = (group["lr"], beta1, beta2, group["eps"], group["weight_decay"])
            groups.append((count, *options, group["decoupled_weight_decay"]))
        return ext.adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, groups)


_hooked_step = torch.optim.Optimizer.profile_hook_step(FusedAdam._step)
