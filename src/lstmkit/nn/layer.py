"""LSTM, GRU and RNN stacks as nn.Modules: parameters live here, the maths runs in a backend.

Parameter names and layouts are torch.nn.LSTM's (``weight_ih_l0``, ``weight_hh_l0_reverse`` ...), so a
state_dict loads into either. Shape legend in core/gates.py.
"""

import dataclasses
import logging
import operator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from ..backends import Plan, check_name, plan
from ..backends.spec import StackSpec
from ..core import init
from ..core.step import CellWeights
from ..errors import InvalidValue, LstmkitError, ShapeError
from . import torch_compat
from .state import LSTMState, State

_log = logging.getLogger(__name__)


@dataclass
class LSTMTrace:
    """Per-step activations of every LSTM layer and direction.

    Each field has dimensions (layer, direction, batch, time, hidden) = (L, D, B, T, H); padded steps are 0.
    ``i``, ``f``, ``o`` are the input, forget and output gates, ``g`` the candidate and ``c`` the cell state.
    """

    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor
    c: Tensor

    dims = ("layer", "direction", "batch", "time", "hidden")


class _RecurrentStack(nn.Module):
    _cell = ""  # "lstm", "gru" or "rnn": set by subclasses

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        layer_norm: bool = False,
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        torch_compat.check_args(
            self._cell, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, proj_size,
            recurrent_dropout, zoneout, layer_norm,
        )
        dropout = torch_compat.check_dropout(dropout, num_layers)
        check_name(backend)
        self.spec = StackSpec(
            self._cell, input_size, hidden_size, num_layers, bias, dropout, bidirectional, proj_size,
            recurrent_dropout, zoneout, layer_norm,
        )
        self.batch_first = batch_first
        self.backend = backend
        spec, factory = self.spec, {"device": device, "dtype": dtype}
        gate_size = spec.num_gates * hidden_size
        self._weight_names: list[dict[str, str]] = []  # per layer and direction: role -> parameter name
        for layer in range(num_layers):
            for direction in range(spec.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {
                    "weight_ih": (gate_size, spec.layer_input_size(layer)),
                    "weight_hh": (gate_size, spec.output_size),
                }
                if bias:
                    shapes |= {"bias_ih": (gate_size,), "bias_hh": (gate_size,)}
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                if layer_norm:
                    shapes |= {
                        "ln_ih_weight": (gate_size,),
                        "ln_hh_weight": (gate_size,),
                        "ln_c_weight": (hidden_size,),
                        "ln_c_bias": (hidden_size,),
                    }
                for role, shape in shapes.items():
                    self.register_parameter(role + sfx, nn.Parameter(torch.empty(shape, **factory)))
                self._weight_names.append({role: role + sfx for role in shapes})
        self._parameter_names = [name for names in self._weight_names for name in names.values()]
        self.reset_parameters()

    # the torch.nn.LSTM attribute names, for code written against it
    input_size = property(lambda self: self.spec.input_size)
    hidden_size = property(lambda self: self.spec.hidden_size)
    num_layers = property(lambda self: self.spec.num_layers)
    bidirectional = property(lambda self: self.spec.bidirectional)
    proj_size = property(lambda self: self.spec.proj_size)
    bias = property(lambda self: self.spec.bias)
    mode = property(lambda self: torch_compat.TORCH_MODES[self._cell], doc="torch.nn's name: 'LSTM', 'GRU', 'RNN_TANH'")

    @property
    def dropout(self) -> float:
        return self.spec.dropout

    @dropout.setter
    def dropout(self, value: float) -> None:
        """Settable after construction, as on torch.nn.LSTM (a new spec: the backend plan follows it)."""
        self.spec = dataclasses.replace(self.spec, dropout=torch_compat.check_dropout(value, self.spec.num_layers))

    @property
    def _all_weights(self) -> list[list[str]]:
        """Parameter names per layer and direction, in torch.nn.LSTM's order (as its ``_all_weights``)."""
        return [[name for role, name in names.items() if not role.startswith("ln_")] for names in self._weight_names]

    @property
    def _flat_weights_names(self) -> list[str]:
        return [name for names in self._all_weights for name in names]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, as torch.nn.LSTM's ``all_weights`` (init loops read it)."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Nothing to do: kept so that code calling torch.nn.LSTM's (for cuDNN's single weight buffer) runs;
        the torch backend hands the parameters to torch's kernels as they are."""

    def __prepare_scriptable__(self) -> nn.Module:
        """Under ``torch.jit.script``, the torch.nn module holding the same parameters: TorchScript cannot
        compile the backend dispatch, and torch.nn's kernels compute the same outputs (state as a tuple)."""
        return torch_compat.as_torch_module(self)

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if name.startswith("ln_"):
                nn.init.constant_(p, 0.0 if "_bias" in name else 1.0)  # layer norms start as the identity
            else:
                init.uniform_(p, self.spec.hidden_size)

    def cell_weights(self) -> list[CellWeights]:
        """The parameters of each layer and direction, index layer * D + direction.

        Made once and reused while the module holds the same parameter objects (every forward asks, and
        gathering them through nn.Module's attribute lookup is a measurable part of a one-step call);
        parameters that are not plain entries (a parametrization) are looked up on every call.
        """
        params = self._parameters
        current = [params.get(name) for name in self._parameter_names]
        cached = self.__dict__.get("_cell_weights_cache")
        if cached is not None and all(map(operator.is_, cached[0], current)):
            return cached[1]
        weights = []
        for names in self._weight_names:
            p = {role: getattr(self, name) for role, name in names.items()}
            weights.append(
                CellWeights(
                    p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), p.get("weight_hr"),
                    p.get("ln_ih_weight"), p.get("ln_hh_weight"), p.get("ln_c_weight"), p.get("ln_c_bias"),
                )
            )
        if all(t is not None for t in current):
            self.__dict__["_cell_weights_cache"] = (current, weights)
        return weights

    def _first_weight(self) -> Tensor:
        """weight_ih_l0, read without nn.Module's attribute lookup where it is a plain parameter."""
        weight = self._parameters.get("weight_ih_l0")
        return weight if weight is not None else self.weight_ih_l0

    def _prepare(
        self, x: Tensor, state: State | None, lengths: Tensor | None, batch_first: bool | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None, bool]:
        spec = self.spec
        name = type(self).__name__
        if x.dim() not in (2, 3):
            raise InvalidValue(
                f"{name} expects input of 3 dimensions (batch, time, features), got shape {tuple(x.shape)}"
            )
        torch_compat.check_dtype(x, self._first_weight())
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0)
        elif not (self.batch_first if batch_first is None else batch_first):
            x = x.transpose(0, 1)
        batch, steps, features = x.shape                                          # x: (B, T, I)
        if features != spec.input_size:
            raise ShapeError(f"{name} expects {spec.input_size} input features (input_size), got {features}")
        if steps == 0:
            raise ShapeError(f"{name} got an empty sequence (0 time steps)")
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(torch.int64).reshape(-1)
            if lengths.shape[0] != batch:
                raise ShapeError(f"lengths has {lengths.shape[0]} entries for a batch of {batch}")
            if bool((lengths < 1).any()) or bool((lengths > steps).any()):
                raise InvalidValue(
                    f"lengths must lie between 1 and the sequence length {steps}, got {lengths.tolist()}"
                )
        rows = spec.num_layers * spec.num_directions
        h_shape = (rows, batch, spec.output_size)
        c_shape = (rows, batch, spec.hidden_size)
        if state is None:
            h0 = x.new_zeros(h_shape)
            tensors: tuple[Tensor, ...] = (h0, x.new_zeros(c_shape)) if spec.mode == "lstm" else (h0,)
        else:
            tensors = tuple(state) if spec.mode == "lstm" else (state,)
            if len(tensors) != (2 if spec.mode == "lstm" else 1) or not all(isinstance(s, Tensor) for s in tensors):
                wanted = "a pair (h, c) of tensors" if spec.mode == "lstm" else "a tensor h"
                raise InvalidValue(f"{name} state must be {wanted}, got {type(state).__name__}")
            if unbatched:
                if any(s.dim() != 2 for s in tensors):
                    raise ShapeError(
                        f"{name} got an unbatched 2-D input, so its state must be 2-D too, got "
                        f"{tuple(s.dim() for s in tensors)}-D"
                    )
                tensors = tuple(s.unsqueeze(1) for s in tensors)
            expected = (h_shape, c_shape)[: len(tensors)]
            got = tuple(tuple(s.shape) for s in tensors)
            if got != expected:
                raise ShapeError(
                    f"{name} state has shape {got}, expected {expected} (layers*directions, batch, units)"
                )
        return x, tensors, lengths, unbatched

    def _plan(self, x: Tensor, purpose: str) -> Plan:
        """The backend decision for this call on x (B, T, I): backends.plan, the one place it is made."""
        dtype = self._first_weight().dtype
        return plan(
            self.backend, self.spec, device=x.device, dtype=dtype, training=self.training,
            shape=(x.shape[0], x.shape[1]), purpose=purpose,
        )

    def _finish(
        self, y: Tensor, final: tuple[Tensor, ...], unbatched: bool, batch_first: bool | None = None
    ) -> tuple[Tensor, State]:
        if unbatched:
            y, final = y.squeeze(0), tuple(s.squeeze(1) for s in final)
        elif not (self.batch_first if batch_first is None else batch_first):
            y = y.transpose(0, 1)
        return y, (LSTMState(*final) if self.spec.mode == "lstm" else final[0])

    def forward(
        self, x: Tensor | PackedSequence, state: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, State]:
        """Runs the stack over a whole sequence.

        Args:
            x: (B, T, I) if batch_first else (T, B, I); or (T, I) for one unbatched sequence; or a
                PackedSequence, in which case y is one too, packed as x (torch.nn.LSTM's pattern).
            state: initial state in torch's layout (LSTMState(h, c) for an LSTM, h for GRU/RNN);
                zeros when None.
            lengths: (B,) true lengths of right-padded sequences; padded steps change neither the state
                nor the outputs (which are 0 there), and the final state is each sequence's own last step.

        Returns:
            y: (B, T, D*H) (D*P with a projection), in the layout of x; and the final state.
        """
        if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
            return _outside_the_graph(self, x, state, lengths)
        if isinstance(x, PackedSequence):
            padded, lengths = torch_compat.unpack(x, lengths)                    # (B, T, I), (B,)
            padded, tensors, lengths, _ = self._prepare(padded, state, lengths, batch_first=True)
            y, final = self._plan(padded, "run").run(padded, tensors, self.cell_weights(), lengths)
            y_packed = torch_compat.repack(y, x, lengths)
            return y_packed, self._finish(y, final, False, batch_first=True)[1]
        x, tensors, lengths, unbatched = self._prepare(x, state, lengths)
        self.last_plan_ = self._plan(x, "run")  # read by the trainer to record which backend trained a run
        y, final = self.last_plan_.run(x, tensors, self.cell_weights(), lengths)
        return self._finish(y, final, unbatched)

    def extra_repr(self) -> str:
        s = self.spec
        text = f"{s.input_size}, {s.hidden_size}, num_layers={s.num_layers}, backend={self.backend!r}"
        for field in ("dropout", "bidirectional", "proj_size", "recurrent_dropout", "zoneout", "layer_norm"):
            if getattr(s, field):
                text += f", {field}={getattr(s, field)}"
        return text


_EAGER_FORWARD: list = []


def _outside_the_graph(stack: _RecurrentStack, *args) -> tuple[Tensor | PackedSequence, State]:
    """torch.compile runs the layers as it runs torch.nn.LSTM (dynamo's allow_rnn=False): eagerly, between
    graphs, so that every backend keeps its speed and its results (torch.export, which needs one graph,
    records them). The wrapper is made on first use, under compile: making it imports dynamo, which must not
    happen before Triton's interpreter is chosen."""
    if not _EAGER_FORWARD:
        _EAGER_FORWARD.append(torch.compiler.disable(_RecurrentStack.forward, recursive=True))
    return _EAGER_FORWARD[0](stack, *args)


class LSTM(_RecurrentStack):
    """A stack of LSTM layers with torch.nn.LSTM's parameters and a choice of backend.

    Args:
        input_size: I, features per step.
        hidden_size: H, units per direction.
        num_layers: L, stacked layers.
        bias: whether the layers have biases.
        batch_first: inputs and outputs are (B, T, features) when True (the default), (T, B, features)
            when False.
        dropout: dropout on the outputs of every layer but the last, while training.
        bidirectional: run a second layer in reverse time and concatenate the outputs.
        proj_size: P > 0 adds a projection of h to P units (as torch.nn.LSTM).
        recurrent_dropout: variational dropout on h inside the recurrence, while training.
        zoneout: probability that each unit keeps its previous cell and hidden value at a step, while
            training (Krueger et al., 2016); evaluation mixes the previous and new values in that proportion.
        layer_norm: layer-normalised gates and cell (Ba et al., 2016), with gains ``ln_*_weight``.
        unit_forget_bias: initialise the forget-gate bias to 1 and the other biases to 0 (Keras's
            default); False keeps torch's uniform biases.
        backend: "auto" (the fastest that runs the configuration), "torch", "fused", "triton" (CUDA) or
            "reference".

    Example:
        >>> lstm = LSTM(8, 32, num_layers=2)
        >>> y, state = lstm(torch.randn(4, 10, 8))   # y (4, 10, 32); state.h, state.c (2, 4, 32)
    """

    _cell = "lstm"

    def __init__(self, *args, unit_forget_bias: bool = True, **kwargs) -> None:
        self.unit_forget_bias = unit_forget_bias
        super().__init__(*args, **kwargs)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.unit_forget_bias and self.spec.bias:
            for w in self.cell_weights():
                init.lstm_bias_(w.b_ih, w.b_hh)

    def step(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """One time step of the whole stack, for generation and live forecasting.

        Args:
            x: (B, I), this step's input. state: the state after the previous step (zeros when None).

        Returns:
            the top layer's h (B, H or P) and the new state. Where the backend plan has a one-call step
            (backends.plan, purpose "step": the fused backend without gradients, in evaluation mode) this is
            one call into compiled code for the whole stack; otherwise the backend runs a one-step sequence.
        """
        if x.dim() != 2:
            raise LstmkitError(f"LSTM.step expects input of 2 dimensions (batch, features), got {tuple(x.shape)}")
        if self.spec.bidirectional:
            raise LstmkitError("LSTM.step needs a unidirectional stack: a reverse direction needs the whole sequence")
        seq, tensors, _, _ = self._prepare(x.unsqueeze(1) if self.batch_first else x.unsqueeze(0), state, None)
        h, c = self._plan(seq, "step").step(seq[:, 0], tensors, self.cell_weights())  # (L, B, H or P), (L, B, H)
        return h[-1], LSTMState(h, c)

    def trace(
        self, x: Tensor, state: LSTMState | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, LSTMState, LSTMTrace]:
        """Like forward, also returning every gate at every step, on the backend that backends.plan chooses
        to trace (the fused one where it runs, else the reference)."""
        x, tensors, lengths, unbatched = self._prepare(x, state, lengths)
        record: dict[str, list[Tensor]] = {k: [] for k in ("i", "f", "g", "o", "c")}
        y, final = self._plan(x, "trace").run(x, tensors, self.cell_weights(), lengths, record)
        shape = (self.spec.num_layers, self.spec.num_directions)
        gathered = {k: torch.stack(v).unflatten(0, shape) for k, v in record.items()}  # (L, D, B, T, H)
        y, final_state = self._finish(y, final, unbatched)
        return y, final_state, LSTMTrace(**gathered)


class GRU(_RecurrentStack):
    """A stack of GRU layers (torch gate order r, z, n), with the same arguments and API as LSTM."""

    _cell = "gru"


class RNN(_RecurrentStack):
    """A stack of plain tanh (Elman) RNN layers, with the same arguments and API as LSTM, and torch.nn.RNN's
    ``nonlinearity`` as its fourth argument, which must be "tanh" (the only one lstmkit runs)."""

    _cell = "rnn"

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", *args, **kwargs
    ) -> None:
        if nonlinearity != "tanh":
            raise InvalidValue(f"lstmkit.RNN runs nonlinearity 'tanh' only, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, *args, **kwargs)

