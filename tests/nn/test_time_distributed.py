"""TimeDistributed: the same module on every step, padded steps skipped; and a CNN-LSTM built with it learning a
clip task from real images (scikit-learn's handwritten digits moving across a canvas), which no single frame
can solve."""

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit import LSTM
from lstmkit.nn import TimeDistributed


def test_equals_the_module_applied_step_by_step_for_video_clips():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())
    x = torch.randn(2, 5, 3, 6, 6)                                                  # (B, T, C, H, W)
    y = TimeDistributed(module)(x)
    assert y.shape == (2, 5, 4 * 4 * 4)
    want = torch.stack([module(x[:, t]) for t in range(5)], dim=1)
    torch.testing.assert_close(y, want)


def test_padded_steps_are_zeros_and_never_reach_the_module():
    seen = []

    class Record(nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x.sum(dim=(1, 2)) + 1.0

    x = torch.randn(3, 4, 2, 5)                                                     # (B, T, H, W) slices
    y = TimeDistributed(Record())(x, torch.tensor([4, 1, 2]))
    assert seen == [7]                                                              # 4 + 1 + 2 real steps
    assert y.shape == (3, 4)
    assert torch.equal(y[1, 1:], torch.zeros(3)) and torch.equal(y[2, 2:], torch.zeros(2))
    torch.testing.assert_close(y[0], x[0].sum(dim=(1, 2)) + 1.0)


def test_gradients_reach_the_shared_weights_from_every_step():
    linear = nn.Linear(3, 2)
    TimeDistributed(linear)(torch.ones(2, 4, 3), torch.tensor([4, 2])).sum().backward()
    torch.testing.assert_close(linear.weight.grad, torch.full((2, 3), 6.0))       # 6 real steps, each x = 1


DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))   # right, left, down, up


def moving_digits(n: int, rng: np.random.Generator, frames: int = 6, canvas: int = 16) -> tuple[torch.Tensor, ...]:
    """Clips (N, T, 1, 16, 16) of a real 8x8 handwritten digit moving 1 pixel per frame in one of four directions;
    the label is the direction. Every frame alone is a digit somewhere on the canvas: only the sequence tells."""
    from sklearn.datasets import load_digits

    images = load_digits().images / 16.0                                            # (1797, 8, 8)
    clips = np.zeros((n, frames, 1, canvas, canvas), dtype=np.float32)
    labels = rng.integers(0, 4, n)
    room, path = canvas - 8, frames - 1                                              # positions 0..room
    for k in range(n):
        image = images[rng.integers(len(images))]
        dy, dx = DIRECTIONS[labels[k]]
        starts = [rng.integers(0, room - path + 1) + (path if d < 0 else 0) if d else rng.integers(0, room + 1)
                  for d in (dy, dx)]
        for t in range(frames):
            y, x = starts[0] + dy * t, starts[1] + dx * t
            clips[k, t, 0, y : y + 8, x : x + 8] = image
    return torch.from_numpy(clips), torch.from_numpy(labels)


class ClipClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(8 * 8 * 8, 32), nn.ReLU())
        self.frames = TimeDistributed(cnn)
        self.lstm = LSTM(32, 32, backend="reference")
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.frames(x))                                            # (B, T, 32)
        return self.head(y[:, -1])                                                  # (B, 4)


@pytest.mark.slow
def test_a_cnn_lstm_learns_the_direction_of_moving_digits():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = moving_digits(640, rng)
    test_x, test_y = moving_digits(200, rng)
    model = ClipClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(6):
        for start in range(0, len(x), 32):
            loss = nn.functional.cross_entropy(model(x[start : start + 32]), y[start : start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    assert accuracy >= 0.9, accuracy
