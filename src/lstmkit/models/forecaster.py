"""Forecaster: a recurrent encoder over a lookback window and a head that emits the next F steps.

Two layouts share one module:

* windowed (``patch_len=0``): the encoder reads the T time steps one by one (all I input columns per step);
  a linear head maps the last output to F x K values at once (direct multi-step), or, with
  ``autoregressive``, to one step that is fed back F times (inputs must then be the targets themselves).
* segment-recurrent (``patch_len=S``, after SegRNN, Lin et al. 2023): the lookback is cut into T/S
  segments, each embedded linearly; the encoder runs over the segments; the decoder makes one recurrent
  step per output segment from the encoder's final state, given a learned segment-position embedding
  (and channel embedding), and all F outputs come out at once.

``channel_independent`` treats each input column as its own univariate series with shared weights (as
PatchTST does); ``revin`` normalises each window by its own mean and std per column and adds them back to
the forecast (reversible instance normalisation, without affine weights).

Shape legend (the package's B, I, H hidden, L layers, D directions, plus): T lookback steps, F forecast steps
(the horizon), K target columns, S segment length, N = T/S input segments, M = ceil(F/S) output segments,
E segment embedding; B', I', K' are B*I, 1, 1 with channel independence, else B, I, K.
"""

import math

import torch
from torch import Tensor, nn

from ..config import ForecastDataConfig, ModelConfig
from ..errors import LstmkitError
from ..nn import GRU, LSTM, RNN, LSTMState, State
from .encoder import SequenceEncoder

_STACKS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
_EPS = 1e-5


def _last_layer(state: State, num_layers: int, directions: int) -> State:
    """The last layer's final state with its directions concatenated: (1, B, D*H) (each of h, c)."""

    def pick(t: Tensor) -> Tensor:
        t = t.view(num_layers, directions, t.shape[1], t.shape[2])[-1]  # (D, B, H)
        return torch.cat(list(t), dim=-1)[None]                        # (1, B, D*H)

    if isinstance(state, LSTMState):
        return LSTMState(pick(state.h), pick(state.c))
    return pick(state)


def _repeat_state(state: State, repeats: int) -> State:
    """Each batch row's state repeated ``repeats`` times along the batch axis: (1, B*repeats, ...)."""
    if isinstance(state, LSTMState):
        return LSTMState(state.h.repeat_interleave(repeats, 1), state.c.repeat_interleave(repeats, 1))
    return state.repeat_interleave(repeats, 1)


class Forecaster(nn.Module):
    """Maps a lookback window (B, T, I) to a forecast (B, F, K) of the target columns.

    Args:
        config: the recurrent backbone (cell, hidden_size, num_layers, bidirectional, dropout; embed_dim is
            the segment embedding size E in the segment layout).
        input_size: I, columns per time step.
        target_index: the K positions of the target columns among the inputs.
        num_targets: K.
        lookback: T; horizon: F.
        patch_len: S, 0 for the windowed layout; T must be a multiple of S.
        channel_independent: one shared univariate model per input column; the targets' forecasts are kept.
        revin: per-window instance normalisation of each column.
        autoregressive: one-step head fed back F times (windowed layout, inputs = targets).
    """

    def __init__(
        self,
        config: ModelConfig,
        input_size: int,
        target_index: list[int],
        num_targets: int,
        lookback: int,
        horizon: int,
        patch_len: int = 0,
        channel_independent: bool = False,
        revin: bool = False,
        autoregressive: bool = False,
    ) -> None:
        super().__init__()
        self.lookback, self.horizon, self.patch_len = lookback, horizon, patch_len
        self.channel_independent, self.revin, self.autoregressive = channel_independent, revin, autoregressive
        self.num_targets = num_targets
        if autoregressive and not channel_independent and len(target_index) != input_size:
            raise LstmkitError(
                "autoregressive forecasting feeds each forecast back as the next input, so the inputs must be the "
                "targets alone (or use channel_independent)"
            )
        self.register_buffer("target_index", torch.tensor(target_index))
        width_in = 1 if channel_independent else input_size
        self.width_out = 1 if channel_independent else num_targets
        if patch_len:
            self.num_in = lookback // patch_len                     # N
            self.num_out = math.ceil(horizon / patch_len)           # M
            e = config.embed_dim
            self.embed = nn.Sequential(nn.Linear(patch_len * width_in, e), nn.ReLU())
            self.encoder = SequenceEncoder(config, input_size=e)
            d = self.encoder.output_size
            channels = input_size if channel_independent else 0
            self.pos_emb = nn.Parameter(torch.randn(self.num_out, d // 2 if channels else d) * 0.02)
            self.channel_emb = nn.Parameter(torch.randn(channels, d - d // 2) * 0.02) if channels else None
            self.decoder = _STACKS[config.cell](d, d, num_layers=1, backend=config.backend)
            self.dropout = nn.Dropout(config.dropout)
            self.head = nn.Linear(d, patch_len * self.width_out)
        else:
            self.encoder = SequenceEncoder(config, input_size=width_in)
            self.dropout = nn.Dropout(config.dropout)
            steps = 1 if autoregressive else horizon
            self.head = nn.Linear(self.encoder.output_size, steps * self.width_out)
        self._layers, self._dirs = config.num_layers, 2 if config.bidirectional else 1

    # ---- layouts -------------------------------------------------------------------------------

    def _windowed(self, x: Tensor) -> Tensor:
        """x (B', T, I') -> (B', F, K')."""
        y, state = self.encoder(x)                                   # (B', T, D*H)
        if not self.autoregressive:
            out = self.head(self.dropout(y[:, -1]))                  # (B', F*K')
            return out.view(x.shape[0], self.horizon, self.width_out)
        steps = []
        step = self.head(self.dropout(y[:, -1]))[:, None]            # (B', 1, K')
        for _ in range(self.horizon - 1):
            steps.append(step)
            y, state = self.encoder(step, state)                     # (B', 1, D*H)
            step = self.head(self.dropout(y[:, -1]))[:, None]        # (B', 1, K')
        steps.append(step)
        return torch.cat(steps, dim=1)                               # (B', F, K')

    def _segments(self, x: Tensor) -> Tensor:
        """x (B', T, I') -> (B', F, K') through segment-level recurrence."""
        b, p = x.shape[0], self.patch_len
        segs = x.reshape(b, self.num_in, p * x.shape[2])             # (B', N, S*I')
        _, state = self.encoder(self.embed(segs))                    # (L*D, B', H)
        state = _repeat_state(_last_layer(state, self._layers, self._dirs), self.num_out)  # (1, B'*M, D*H)
        pos = self.pos_emb[None].expand(b, -1, -1)                   # (B', M, E')
        if self.channel_emb is not None:
            c = self.channel_emb.shape[0]
            chan = self.channel_emb.repeat(b // c, 1)[:, None].expand(-1, self.num_out, -1)  # (B', M, E'')
            pos = torch.cat([pos, chan], dim=-1)                     # (B', M, D*H)
        y, _ = self.decoder(pos.reshape(b * self.num_out, 1, -1), state)   # (B'*M, 1, D*H)
        out = self.head(self.dropout(y[:, 0]))                       # (B'*M, S*K')
        out = out.view(b, self.num_out, p, self.width_out).flatten(1, 2)   # (B', M*S, K')
        return out[:, : self.horizon]                                # (B', F, K')

    # ---- forward -------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, I) scaled inputs -> (B, F, K) scaled forecasts of the target columns."""
        b, _, i = x.shape
        if self.revin:
            mean = x.mean(dim=1, keepdim=True).detach()              # (B, 1, I)
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _EPS).detach()  # (B, 1, I)
            x = (x - mean) / std                                     # (B, T, I)
        if self.channel_independent:
            x = x.permute(0, 2, 1).reshape(b * i, self.lookback, 1)  # (B*I, T, 1)
        out = self._segments(x) if self.patch_len else self._windowed(x)  # (B', F, K')
        if self.channel_independent:
            out = out.view(b, i, self.horizon).permute(0, 2, 1)      # (B, F, I)
        if self.revin:
            out = out * (std if self.channel_independent else std[..., self.target_index]) + (
                mean if self.channel_independent else mean[..., self.target_index]
            )                                                        # (B, F, I or K)
        if self.channel_independent:
            out = out[..., self.target_index]                        # (B, F, K)
        return out


def build_forecaster(model: ModelConfig, data: ForecastDataConfig, input_size: int, num_targets: int) -> Forecaster:
    """The Forecaster for a series whose first ``num_targets`` of ``input_size`` input columns are the targets."""
    return Forecaster(
        model, input_size, list(range(num_targets)), num_targets, data.lookback, data.horizon,
        patch_len=data.patch_len, channel_independent=data.channel_independent, revin=data.revin,
        autoregressive=data.autoregressive,
    )
