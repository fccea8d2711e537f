"""One contender on one workload, PyTorch side: plain torch.nn.LSTM as a user writes it, or lstmkit.

Prints one JSON line: {"contender", "workload", "unit", "rates": [...], ...}. bench_peers.py runs this (and
bench_keras.py) once per contender and workload, in separate processes, alternating the order.

Contenders:
    pytorch            torch.nn.LSTM + torch.optim (Adam / RMSprop with its defaults), float32
    lstmkit-<backend>  lstmkit.LSTM(backend=<backend>), the head lstmkit.Linear (torch's nn.Linear, its float32
                       CPU products on lstmkit's kernel where large: as its language models' decoder) and the
                       optimiser lstmkit's trainer builds, float32
    lstmkit-<backend>-bf16   the same under CPU autocast to bfloat16 (lstmkit's --precision bf16)

Run:
    python benchmarks/bench_torch.py --contender lstmkit-fused --workload W3
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import workloads as wl

import lstmkit
from lstmkit.config import TrainConfig
from lstmkit.nn import sampling
from lstmkit.train.optim import build_optimizer


class Model(nn.Module):
    """[Embedding] -> LSTM stack -> Linear head, at every step or on the last step."""

    def __init__(self, w: wl.Workload, lstm: nn.Module, head: type[nn.Linear]) -> None:
        super().__init__()
        self.w = w
        self.embedding = nn.Embedding(w.vocab, w.input_size) if w.vocab else None
        if self.embedding is not None and w.name == "W1":  # one-hot characters: the identity embedding
            nn.init.eye_(self.embedding.weight)
            self.embedding.weight.requires_grad_(False)
        self.lstm = lstm
        self.head = head(w.hidden, w.outputs)

    def forward(self, x: torch.Tensor, state=None):
        if self.embedding is not None:
            x = self.embedding(x)
        y, state = self.lstm(x, state)
        if not self.w.per_step_head:
            y = y[:, -1]
        return self.head(y), state


def build(w: wl.Workload, contender: str) -> nn.Module:
    torch.manual_seed(wl.SEED)
    if contender == "pytorch":
        lstm = nn.LSTM(w.input_size, w.hidden, num_layers=w.layers, dropout=w.dropout, batch_first=True)
        return Model(w, lstm, nn.Linear)
    backend = contender.split("-")[1]
    lstm = lstmkit.LSTM(w.input_size, w.hidden, num_layers=w.layers, dropout=w.dropout, backend=backend)
    return Model(w, lstm, lstmkit.Linear)


def batches(w: wl.Workload, batch: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(wl.SEED)
    batch = batch or w.batch
    out = []
    for _ in range(wl.DATA_BATCHES):
        if w.vocab:
            x = torch.randint(0, w.vocab, (batch, w.seq_len), generator=gen)
        else:
            x = torch.randn(batch, w.seq_len, w.input_size, generator=gen)
        if w.loss == "xent":
            y = torch.randint(0, w.outputs, (batch, w.seq_len), generator=gen)
        elif w.loss == "bce":
            y = torch.randint(0, 2, (batch, 1), generator=gen).float()
        else:
            y = torch.randn(batch, 1, generator=gen)
        out.append((x, y))
    return out


def loss_fn(w: wl.Workload, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if w.loss == "xent":
        return F.cross_entropy(out.reshape(-1, w.outputs).float(), y.reshape(-1))
    if w.loss == "bce":
        return F.binary_cross_entropy_with_logits(out.float(), y)
    return F.mse_loss(out.float(), y)


def optimizer(w: wl.Workload, model: nn.Module, contender: str) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if contender == "pytorch":
        cls = torch.optim.Adam if w.optimizer == "adam" else torch.optim.RMSprop
        return cls(params, lr=w.lr)
    return build_optimizer(params, TrainConfig(optimizer=w.optimizer, lr=w.lr, weight_decay=0.0))


def timed_repeats(step, items: int, repeats: int, min_seconds: float, warmup: int) -> list[float]:
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            step()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates.append(n * items / elapsed)
    return rates


def train_rates(w: wl.Workload, contender: str, repeats: int, min_seconds: float) -> list[float]:
    model = build(w, contender).train()
    opt = optimizer(w, model, contender)
    data = batches(w)
    bf16 = contender.endswith("-bf16")
    k = [0]

    def step() -> None:
        x, y = data[k[0] % len(data)]
        k[0] += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out, _ = model(x)
        loss = loss_fn(w, out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed_repeats(step, w.items_per_batch, repeats, min_seconds, warmup=3)


def generation_rates(contender: str, repeats: int, min_seconds: float) -> list[float]:
    """W6: 500 characters at batch 1, sampling each from the softmax, the state carried between steps."""
    w = wl.W1
    model = build(w, contender).eval()
    gen = torch.Generator().manual_seed(wl.SEED)

    if contender == "pytorch":
        def one_run() -> None:
            with torch.no_grad():
                x, state = torch.zeros(1, 1, dtype=torch.long), None
                for _ in range(wl.GENERATE_CHARS):
                    logits, state = model(x, state)
                    x = torch.multinomial(F.softmax(logits[:, -1], -1), 1, generator=gen)
    else:
        def one_run() -> None:  # one call for all 500 characters (compiled with the fused backend)
            with torch.no_grad():
                uniforms = torch.rand(wl.GENERATE_CHARS, generator=gen)
                first = torch.zeros(w.vocab)
                sampling.generate(model.lstm, model.embedding, model.head, first, None, uniforms)

    return timed_repeats(one_run, wl.GENERATE_CHARS, repeats, min_seconds, warmup=1)


def bulk_rates(contender: str, repeats: int, min_seconds: float) -> list[float]:
    """W6: inference of the W1 model on a batch of 256 sequences of 50 characters."""
    w = wl.W1
    model = build(w, contender).eval()
    x = batches(w, wl.BULK_BATCH)[0][0]
    bf16 = contender.endswith("-bf16")

    def one_pass() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    return timed_repeats(one_pass, wl.BULK_BATCH * w.seq_len, repeats, min_seconds, warmup=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", required=True)
    parser.add_argument("--workload", required=True, choices=[*wl.TRAINING, "W6-gen", "W6-bulk"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.workload == "W6-gen":
        rates, unit = generation_rates(args.contender, args.repeats, args.min_seconds), "chars"
    elif args.workload == "W6-bulk":
        rates, unit = bulk_rates(args.contender, args.repeats, args.min_seconds), "tokens"
    else:
        w = wl.TRAINING[args.workload]
        rates, unit = train_rates(w, args.contender, args.repeats, args.min_seconds), w.unit
    record = {
        "contender": args.contender,
        "workload": args.workload,
        "unit": unit,
        "rates": rates,
        "method": "training step" if args.workload in wl.TRAINING else args.workload,
        "versions": {"torch": torch.__version__, "lstmkit": lstmkit.__version__},
        "threads": args.threads,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
