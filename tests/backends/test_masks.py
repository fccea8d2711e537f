"""The regularisers' random masks: counter-based draws, the same from the compiled extension and from torch
operations, fixed by torch's seed, with the frequencies asked for."""

import pytest
import torch

from lstmkit.backends import extension, masks

needs_extension = pytest.mark.skipif(extension.load() is None, reason="the C++ extension cannot be built here")


@needs_extension
@pytest.mark.parametrize("n, p, scale, keys", [
    (450_000, 0.8, 1.25, (123456789, 987654321)),   # the W1 model's inter-layer mask
    (100_003, 0.3, 1.0, (0, 0)),                   # zero keys; an odd length past the threads' split
    (17, 0.5, 2.0, (2**32 - 1, 7)),                 # shorter than one vector
    (5_000, 1.0, 1.0, (5, 6)),                      # certain: threshold 2^32
    (5_000, 0.0, 1.0, (5, 6)),
    (0, 0.5, 1.0, (1, 2)),
])
def test_compiled_draws_equal_the_torch_operations_bit_for_bit(n, p, scale, keys):
    threshold = min(2**32, round(p * 2**32))
    compiled = extension.load().bernoulli_mask(n, threshold, scale, *keys)
    written = masks.hashed_bernoulli(n, threshold, scale, *keys, torch.device("cpu"))
    assert compiled.dtype == written.dtype == torch.float32
    assert torch.equal(compiled, written)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_draws_have_the_asked_frequency_and_no_pairwise_pattern(p):
    torch.manual_seed(0)
    n = 400_000
    draws = masks.bernoulli((n,), p, torch.zeros(1), scale=3.0)
    assert set(draws.unique().tolist()) <= {0.0, 3.0}
    kept = draws > 0
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(kept.float().mean().item() - p) < 5 * sigma
    for lag in (1, 2, 16, 300):  # neighbours, a vector apart, a row of 300 apart
        both = (kept[lag:] & kept[:-lag]).float().mean().item()
        assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / n) ** 0.5


def test_the_seed_fixes_the_masks_and_successive_masks_differ():
    like = torch.zeros(1)
    torch.manual_seed(3)
    first, second = masks.bernoulli((50, 40), 0.5, like), masks.bernoulli((50, 40), 0.5, like)
    torch.manual_seed(3)
    again = masks.bernoulli((50, 40), 0.5, like)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)
    assert masks.bernoulli((3, 4), 0.5, torch.zeros(1, dtype=torch.float64)).dtype == torch.float64


def test_a_mask_beyond_the_counter_range_is_refused():
    with pytest.raises(ValueError, match="more than the 2\\^32"):
        masks.bernoulli((2**16 + 1, 2**16), 0.5, torch.zeros(1))
