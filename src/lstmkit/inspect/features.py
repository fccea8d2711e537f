"""Simple per-token features of a text (position in line, inside quotes, after a full stop ...) and the
Pearson correlation of every LSTM unit with each of them, to find interpretable units automatically.

Owns the feature definitions and the correlation maths; tracing is in trace.py.
"""

from collections.abc import Callable

import numpy as np

from .trace import Trace

POSITIVE_WORDS = frozenset(
    "good great love loved lovely happy joy best better wonderful excellent fair sweet kind noble gentle "
    "brave honour honor glad beautiful brilliant amazing perfect fine pleasure hope peace".split()
)
NEGATIVE_WORDS = frozenset(
    "bad worst worse hate hated evil awful terrible horrible sad poor foul blood bloody death dead murder "
    "fear cruel ill boring dull weak wrong grief pain curse damned".split()
)
SENTENCE_ENDS = ".!?"


def _line_position(tokens: list[str]) -> np.ndarray:
    """Tokens since the last line break (0 for the first token of a line; the break itself ends its line)."""
    out, pos = np.zeros(len(tokens)), 0
    for t, tok in enumerate(tokens):
        out[t] = pos
        pos = 0 if tok == "\n" else pos + 1
    return out


def _word_position(tokens: list[str]) -> np.ndarray:
    """Tokens since the last space or line break; 0 on the space or break itself."""
    out, pos = np.zeros(len(tokens)), 0
    for t, tok in enumerate(tokens):
        pos = 0 if tok.isspace() else pos + 1
        out[t] = pos
    return out


def _between(tokens: list[str], opening: str, closing: str) -> np.ndarray:
    """1 from an opening mark to its closing mark inclusive (for quotes, opening == closing), else 0."""
    out, inside = np.zeros(len(tokens)), False
    for t, tok in enumerate(tokens):
        if inside:
            out[t] = 1.0
            inside = tok != closing
        elif tok == opening:
            out[t], inside = 1.0, True
    return out


def _after_full_stop(tokens: list[str]) -> np.ndarray:
    """1 after a sentence end (. ! ?) up to and including the next letter (where a new sentence starts)."""
    out, pending = np.zeros(len(tokens)), False
    for t, tok in enumerate(tokens):
        if pending:
            out[t] = 1.0
            pending = not tok.isalpha()
        if tok and tok[-1] in SENTENCE_ENDS:
            pending = True
    return out


def _words(tokens: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased word) spans of letters; a token with several letters counts as one word."""
    spans, start = [], None
    for t, tok in enumerate([*tokens, " "]):
        letter = tok.isalpha() or tok == "'"
        if letter and start is None:
            start = t
        elif not letter and start is not None:
            spans.append((start, t, "".join(tokens[start:t]).strip("'").lower()))
            start = None
    return spans


def _uppercase_word(tokens: list[str]) -> np.ndarray:
    """1 inside words of two or more letters written in capitals (speaker names in plays, shouting)."""
    out = np.zeros(len(tokens))
    for start, end, _ in _words(tokens):
        word = "".join(tokens[start:end])
        if sum(ch.isalpha() for ch in word) >= 2 and word.isupper():
            out[start:end] = 1.0
    return out


def _sentiment_word(tokens: list[str]) -> np.ndarray:
    """+1 inside words of a small positive lexicon, -1 inside negative ones, 0 elsewhere."""
    out = np.zeros(len(tokens))
    for start, end, word in _words(tokens):
        out[start:end] = 1.0 if word in POSITIVE_WORDS else -1.0 if word in NEGATIVE_WORDS else 0.0
    return out


FEATURES: dict[str, Callable[[list[str]], np.ndarray]] = {
    "line_position": _line_position,
    "word_position": _word_position,
    "inside_quotes": lambda tokens: _between(tokens, '"', '"'),
    "inside_brackets": lambda tokens: np.maximum(_between(tokens, "(", ")"), _between(tokens, "[", "]")),
    "after_full_stop": _after_full_stop,
    "uppercase_word": _uppercase_word,
    "sentiment_word": _sentiment_word,
}


def text_features(tokens: list[str]) -> dict[str, np.ndarray]:
    """Every feature of FEATURES for the tokens, name -> (T,)."""
    return {name: fn(tokens) for name, fn in FEATURES.items()}


def correlation(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson correlation of each unit with a feature over time.

    Args:
        values: (..., T, H), e.g. a Trace quantity (L, D, T, H).
        feature: (T,).

    Returns:
        r of shape (..., H); 0 where a unit or the feature is constant (no linear relation to measure).
    """
    x = values - values.mean(axis=-2, keepdims=True)                  # (..., T, H)
    y = feature - feature.mean()                                        # (T,)
    cov = np.einsum("...th,t->...h", x, y)                              # (..., H)
    norm = np.sqrt((x**2).sum(axis=-2)) * np.sqrt((y**2).sum())         # (..., H)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 1e-12, cov / np.where(norm > 1e-12, norm, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def top_units(trace: Trace, features: dict[str, np.ndarray], quantity: str = "c", k: int = 5) -> list[dict]:
    """The ``k`` units whose ``quantity`` correlates most strongly (by |r|) with each feature.

    Returns:
        Rows {feature, rank, layer, direction, unit, r, r2}, best first within each feature; a feature that is
        constant on the text gets no rows.
    """
    values = trace[quantity]                                            # (L, D, T, H)
    rows = []
    for name, feature in features.items():
        if np.ptp(feature) == 0:
            continue
        r = correlation(values, feature)                                # (L, D, H)
        order = np.argsort(-np.abs(r), axis=None)[:k]
        for rank, flat in enumerate(order, start=1):
            layer, direction, unit = np.unravel_index(flat, r.shape)
            value = float(r[layer, direction, unit])
            rows.append({
                "feature": name, "rank": rank, "layer": int(layer), "direction": int(direction), "unit": int(unit),
                "r": round(value, 4), "r2": round(value * value, 4),
            })
    return rows
