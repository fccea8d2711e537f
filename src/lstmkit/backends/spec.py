"""What a recurrent stack is, independent of how it is run: the contract between modules and backends."""

import functools
from dataclasses import dataclass, fields

MODES = ("lstm", "gru", "rnn")
GATES_PER_MODE = {"lstm": 4, "gru": 3, "rnn": 1}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}

# Fields every backend runs at any value: what a stack is rather than an option of it.
SHAPE_FIELDS = ("mode", "input_size", "hidden_size", "num_layers")
# Options that change nothing outside training: in evaluation they are not in use, whatever their value.
TRAINING_ONLY = ("dropout", "recurrent_dropout")
# How refusals name an option; a field missing here is named by its field name.
DESCRIPTIONS = {
    "bias": "layers without biases (bias=False)",
    "dropout": "dropout between layers",
    "bidirectional": "reverse direction (bidirectional)",
    "proj_size": "projection (proj_size)",
    "recurrent_dropout": "recurrent dropout",
    "zoneout": "zoneout",
    "layer_norm": "layer normalisation",
}


@dataclass(frozen=True)
class StackSpec:
    """A stack of recurrent layers, as torch.nn.LSTM / GRU / RNN describe it.

    Attributes:
        mode: "lstm", "gru" or "rnn" (tanh).
        input_size: I, features per step of the first layer's input.
        hidden_size: H, units per direction.
        num_layers: L.
        bias: whether b_ih and b_hh exist.
        dropout: dropout on each layer's output except the last (training only).
        bidirectional: D = 2 if True.
        proj_size: P > 0 projects h to P units (LSTM only); 0 for none.
        recurrent_dropout: variational dropout on h_prev inside the recurrence (training only), one mask
            per sequence, layer and direction, as Gal and Ghahramani (2016) and Keras's recurrent_dropout.
        zoneout: LSTM only; probability that a unit keeps its previous cell and hidden value at a step
            (Krueger et al., 2016); masks while training, the expectation in evaluation.
        layer_norm: LSTM only; layer-normalised gates and cell (Ba et al., 2016), see core.step.lstm_step.
    """

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    layer_norm: bool = False

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def num_gates(self) -> int:
        return GATES_PER_MODE[self.mode]

    @property
    def output_size(self) -> int:
        """Units of h per direction: P with a projection, else H."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.output_size * self.num_directions


@functools.cache
def features(spec: StackSpec, training: bool) -> tuple[str, ...]:
    """The options ``spec`` uses: every field outside SHAPE_FIELDS whose value is not its default, less the
    training-only ones in evaluation. A backend runs a spec only if it declares all of them (``FEATURES``), so
    that a field added here is refused by every backend until that backend handles it. Cached: the selector
    asks on every forward."""
    return tuple(
        f.name for f in fields(spec)
        if f.name not in SHAPE_FIELDS and getattr(spec, f.name) != f.default
        and (training or f.name not in TRAINING_ONLY)
    )
