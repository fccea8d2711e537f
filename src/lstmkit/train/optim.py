"""Optimizers and learning-rate schedules, built from a TrainConfig."""

import math
from collections.abc import Iterable

import torch
from torch import nn

from ..config import TrainConfig
from .fused_adam import FusedAdam


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser, in its fastest implementation: Adam and AdamW update every parameter in one call
    (on CPU float32 parameters lstmkit's compiled step, train/fused_adam.py; elsewhere torch's fused kernel,
    ``fused=True``), the others with one multi-tensor ("foreach") call per operation. On the small models
    people train on CPUs the per-parameter loop of the default implementations costs as much as the LSTM
    itself."""
    params = list(params)
    decay = config.weight_decay
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    if config.optimizer in ("adam", "adamw"):
        decoupled = config.optimizer == "adamw"
        return FusedAdam(
            params, lr=config.lr, weight_decay=decay, fused=fused or None, decoupled_weight_decay=decoupled
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=decay, momentum=0.0, foreach=True)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=decay, foreach=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """"constant" and "cosine" (to zero over ``total_steps``) step after every batch, with linear warm-up over
    ``warmup_steps``; "plateau" halves the rate after 2 epochs without validation improvement."""
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    warmup, cosine = config.warmup_steps, config.lr_schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
