import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.config import ForecastDataConfig, ModelConfig
from lstmkit.models.forecaster import Forecaster, build_forecaster

SMALL = ModelConfig(embed_dim=8, hidden_size=8, num_layers=1, dropout=0.0)


@pytest.mark.parametrize(
    "model, options",
    [
        (SMALL, {}),
        (ModelConfig(embed_dim=8, hidden_size=8, num_layers=2, bidirectional=True), {}),
        (SMALL, {"autoregressive": True, "channel_independent": True}),
        (SMALL, {"patch_len": 4}),
        (ModelConfig(cell="gru", embed_dim=8, hidden_size=8, num_layers=2, bidirectional=True), {"patch_len": 4}),
        (SMALL, {"patch_len": 4, "channel_independent": True, "revin": True}),
        (SMALL, {"revin": True}),
    ],
)
def test_forecast_shapes_and_gradients(model, options):
    """Inputs (B, T=12, I=3) with the first K=2 columns as targets -> (B, F=5, K=2), for every layout."""
    net = Forecaster(model, 3, [0, 1], 2, lookback=12, horizon=5, **options)
    x = torch.randn(4, 12, 3)
    y = net(x)
    assert y.shape == (4, 5, 2)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_revin_makes_the_forecast_follow_shifts_and_scales_of_the_window():
    torch.manual_seed(0)
    net = Forecaster(SMALL, 2, [0, 1], 2, 12, 6, patch_len=4, channel_independent=True, revin=True).eval()
    x = torch.randn(3, 12, 2)
    with torch.no_grad():
        torch.testing.assert_close(net(5.0 * x + 7.0), 5.0 * net(x) + 7.0, atol=1e-4, rtol=1e-4)


def test_channel_independent_columns_do_not_mix():
    torch.manual_seed(0)
    net = Forecaster(SMALL, 3, [0, 1, 2], 3, 8, 4, patch_len=4, channel_independent=True).eval()
    x = torch.randn(2, 8, 3)
    changed = x.clone()
    changed[..., 2] += 10.0
    with torch.no_grad():
        torch.testing.assert_close(net(x)[..., :2], net(changed)[..., :2])


def test_autoregressive_needs_the_targets_alone():
    with pytest.raises(LstmkitError) as err:
        Forecaster(SMALL, 3, [0], 1, 8, 4, autoregressive=True)
    assert str(err.value) == (
        "autoregressive forecasting feeds each forecast back as the next input, so the inputs must be the targets "
        "alone (or use channel_independent)"
    )


def test_build_forecaster_reads_the_layout_from_the_data_config():
    data = ForecastDataConfig(lookback=24, horizon=10, patch_len=6, channel_independent=True, revin=True)
    net = build_forecaster(SMALL, data, input_size=4, num_targets=2)
    assert net(torch.randn(2, 24, 4)).shape == (2, 10, 2)
    assert net.num_in == 4 and net.num_out == 2
