"""The CNN-LSTM for speech: slices cover every frame, and padding changes nothing."""

import torch

from lstmkit.config import ConvFrontConfig, ModelConfig
from lstmkit.models.speech import SpeechClassifier, slice_count, to_slices


def test_slices_cover_every_frame_and_count_per_length():
    x = torch.arange(10.0).repeat_interleave(2).reshape(1, 10, 2)                  # (B=1, T=10, M=2), frame t = t
    s = to_slices(x, width=4, hop=3)                                                # (1, S, 1, 4, 2)
    assert s.shape == (1, 3, 1, 4, 2)
    assert s[0, :, 0, :, 0].tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert slice_count(torch.tensor([1, 4, 5, 7, 10]), 4, 3).tolist() == [1, 1, 2, 2, 3]


def test_padding_does_not_change_the_logits():
    torch.manual_seed(0)
    model = SpeechClassifier(ConvFrontConfig(channels=(4,), slice_frames=4, slice_hop=2),
                             ModelConfig(embed_dim=8, hidden_size=8, num_layers=1, bidirectional=True,
                                         pooling="max", backend="reference"), n_features=6, num_classes=3).eval()
    short, long = torch.randn(1, 9, 6), torch.randn(1, 20, 6)
    padded = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 11)), long])     # (2, 20, 6)
    with torch.no_grad():
        together = model(padded, torch.tensor([9, 20]))                             # (2, 3)
        alone = model(short, torch.tensor([9]))                                     # (1, 3)
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)
