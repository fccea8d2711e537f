"""Metric formulas, shared by every task's evaluation."""

import math


def language_model_metrics(total_nll: float, count: int) -> dict[str, float]:
    """From the summed negative log-likelihood (nats) of ``count`` predicted tokens.

    Returns loss (nats per token), perplexity = exp(loss) and bits per token = loss / ln 2, which for a
    character model is bits per character.
    """
    loss = total_nll / count
    return {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": loss / math.log(2)}
