"""The benchmark workloads W1-W6, defined once for every framework (plain Python: no torch, no keras here).

Each training workload is a model, a batch shape and an optimiser; the data are random (fixed seed) with the
real shapes and vocabularies, because throughput does not depend on what the numbers mean.

    W1  text generation   one-hot chars (60) -> 2 x LSTM(300), dropout 0.2 -> Dense(60) at every step
                          sequence 50, batch 30, Adam; counted in tokens (batch x sequence)
    W2  IMDB              Embedding(15000, 16) -> LSTM(32) -> Dense(1, sigmoid) on the last step
                          length 228, batch 100, RMSprop; counted in samples
    W3  time series       window 10 x 1 feature -> LSTM(50) -> Dense(1), batch 32, Adam, MSE; samples
    W4  time series       window 10 x 1 -> LSTM(50) -> LSTM(50) -> Dense(1), batch 32, Adam, MSE; samples
    W5  word LM           Embedding(10000, 650) -> 2 x LSTM(650), dropout 0.5 -> Dense(10000) at every step
                          sequence 35, batch 20, Adam; tokens
    W6  generation        the W1 model, batch 1, 500 characters sampled with the state carried (chars/s);
                          and bulk inference, batch 256 x sequence 50 (tokens/s)

W1's model takes one-hot characters: an Embedding(60, 60) initialised to the identity is the same
computation, and that is how the PyTorch models take them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    vocab: int            # 0 for real-valued inputs
    input_size: int       # features per step entering the first LSTM (embedding width or series features)
    hidden: int
    layers: int
    dropout: float        # between LSTM layers
    seq_len: int
    batch: int
    outputs: int          # units of the Dense head
    per_step_head: bool   # Dense at every step (language models) or on the last step only
    loss: str             # "xent", "bce" or "mse"
    optimizer: str        # "adam" or "rmsprop"
    lr: float
    unit: str             # "tokens" or "samples"

    @property
    def items_per_batch(self) -> int:
        return self.batch * self.seq_len if self.unit == "tokens" else self.batch

    def forward_flops_per_batch(self) -> float:
        """Multiply-adds x 2 of the matrix products (LSTM input and recurrent products, the head)."""
        flops = 0.0
        tokens = self.batch * self.seq_len
        for layer in range(self.layers):
            inputs = self.input_size if layer == 0 else self.hidden
            flops += 2.0 * tokens * 4 * self.hidden * (inputs + self.hidden)
        head_rows = tokens if self.per_step_head else self.batch
        flops += 2.0 * head_rows * self.hidden * self.outputs
        return flops

    def train_flops_per_batch(self) -> float:
        """Forward plus backward (gradients of inputs and weights): three times the forward products."""
        return 3.0 * self.forward_flops_per_batch()


W1 = Workload("W1", "text generation, 2 x LSTM(300)", 60, 60, 300, 2, 0.2, 50, 30, 60, True, "xent", "adam",
              2e-3, "tokens")
W2 = Workload("W2", "IMDB, Embedding 16 -> LSTM(32)", 15000, 16, 32, 1, 0.0, 228, 100, 1, False, "bce", "rmsprop",
              1e-3, "samples")
W3 = Workload("W3", "time series, LSTM(50)", 0, 1, 50, 1, 0.0, 10, 32, 1, False, "mse", "adam", 1e-3, "samples")
W4 = Workload("W4", "time series, 2 x LSTM(50)", 0, 1, 50, 2, 0.0, 10, 32, 1, False, "mse", "adam", 1e-3,
              "samples")
W5 = Workload("W5", "word LM, 2 x LSTM(650)", 10000, 650, 650, 2, 0.5, 35, 20, 10000, True, "xent", "adam", 1e-3,
              "tokens")
TRAINING = {w.name: w for w in (W1, W2, W3, W4, W5)}

GENERATE_CHARS = 500   # W6: characters sampled at batch 1, state carried
BULK_BATCH = 256       # W6: batch of the bulk-inference pass over W1's sequence length
DATA_BATCHES = 16      # distinct random batches cycled through while timing
SEED = 0


def generation_flops_per_char() -> float:
    """W6 at batch 1: every weight of the W1 model is used once per character (2 flops per weight)."""
    w = W1
    return W1.forward_flops_per_batch() / (w.batch * w.seq_len)
