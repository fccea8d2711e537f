"""Sampling tokens one at a time with the recurrent state carried: the rule, and the generation loop.

The rule (``pick``): the banned id never comes; temperature 0 takes the argmax; otherwise the softmax of
logits / temperature, limited to the ``top_k`` likeliest tokens, is sampled by inverse CDF with one uniform
number in [0, 1) per token. The uniforms are drawn up front from a seeded generator, so a seed fixes the
text, and a backend's one-call generation and the Python loop here consume the same numbers.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..backends import plan
from .layer import LSTM
from .state import LSTMState, State

Step = Callable[[Tensor, State | None], tuple[Tensor, State]]  # ids (1,) -> logits (1, V), new state


def pick(logits: Tensor, u: float, temperature: float, top_k: int | None = None, banned: int | None = None) -> int:
    """The next token id from logits (V,) and a uniform number u in [0, 1), by the rule above."""
    logits = logits.detach().float().clone()                       # (V,)
    if banned is not None:
        logits[banned] = -float("inf")
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[-1]
        logits[logits < kth] = -float("inf")
    cdf = torch.cumsum(torch.softmax(logits, dim=-1), dim=0)       # (V,)
    k = int(torch.searchsorted(cdf, u * cdf[-1:], right=True))     # the first id whose cdf exceeds u
    return k if k < logits.shape[0] else int(logits.argmax())


def loop(
    step: Step, logits: Tensor, state: State | None, uniforms: Tensor, temperature: float = 1.0,
    top_k: int | None = None, banned: int | None = None,
) -> tuple[Tensor, State | None, Tensor]:
    """Generates len(uniforms) tokens with a model's one-step function: token s is picked from the current
    logits (V,) with uniforms[s], then fed back. Returns the ids (n,), the state after the last one and the
    logits that follow it."""
    ids = []
    for u in uniforms.tolist():
        k = pick(logits, u, temperature, top_k, banned)
        ids.append(k)
        step_logits, state = step(torch.tensor([k], device=logits.device), state)
        logits = step_logits[0]
    return torch.tensor(ids, dtype=torch.long), state, logits


@torch.no_grad()
def generate(
    lstm: LSTM, embedding: nn.Embedding, decoder: nn.Linear, logits: Tensor, state: LSTMState | None,
    uniforms: Tensor, temperature: float = 1.0, top_k: int | None = None, banned: int | None = None,
) -> tuple[Tensor, LSTMState, Tensor]:
    """``loop`` for the usual character or word model, Embedding -> LSTM stack -> Linear, at batch 1.

    Where the backend plan has a one-call generation (backends.plan, purpose "generate": the fused backend
    in evaluation mode), the whole generation is one call into compiled code, with no Python per token;
    otherwise it is ``loop`` over LSTM.step.
    """
    spec = lstm.spec
    if state is None:
        zeros = logits.new_zeros(spec.num_layers, 1, spec.hidden_size)
        state = LSTMState(zeros, zeros)
    dtype = embedding.weight.dtype
    for p in (decoder.weight, *lstm.parameters()):
        dtype = torch.promote_types(dtype, p.dtype)
    chosen = plan(
        lstm.backend, spec, device=embedding.weight.device, dtype=dtype,
        training=lstm.training or embedding.training, purpose="generate",
    )
    if chosen.one_call:
        rule = (float(temperature), int(top_k or 0), -1 if banned is None else int(banned))
        head = (decoder.weight, decoder.bias)
        ids, (h, c), last = chosen.sample(
            lstm.cell_weights(), tuple(state), embedding.weight, head, logits, uniforms, rule
        )
        return ids, LSTMState(h, c), last

    def step(ids: Tensor, state: State | None) -> tuple[Tensor, State]:
        h, state = lstm.step(embedding(ids), state)
        return decoder(h), state

    return loop(step, logits, state, uniforms, temperature, top_k, banned)
