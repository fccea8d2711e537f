"""Training throughput of each lstmkit backend against a plain torch.nn.LSTM model.

Measures tokens per second (batch * seq_len per optimizer step, forward + backward + Adam step included)
on the tutorial's character model: vocabulary 60, Embedding -> 2 x LSTM(300) with dropout 0.2 between
layers -> Linear(60), sequence length 50, batch 30, Adam lr 2e-3, cross-entropy over every position, on
random token ids (fixed seed). Contenders, all in one process: one model per backend in
lstmkit.backends.BACKENDS that runs on the device (Embedding -> lstmkit.LSTM(backend=name) -> Linear), and
the same model written with torch.nn.LSTM as a user would.

The machine may be shared and noisy, so every contender is warmed up, then timed for --steps steps in
each of --rounds rounds, in an order that is reversed every other round (the reference backend, a slower
per-step Python loop, for --reference-steps steps in the first --reference-rounds rounds only); the table
gives each contender's median rate over rounds and its ratio to the torch.nn.LSTM model of the same run.
Compare ratios, not absolute rates, across runs.

Run:
    python benchmarks/bench_backends.py
    python benchmarks/bench_backends.py --backends torch --rounds 9 --json results.json
"""

import argparse
import json
import os
import statistics
import time

import torch
from torch import nn

import lstmkit
from lstmkit.backends import BACKENDS, unsupported

VOCAB, EMBED_DIM, NUM_LAYERS, DROPOUT, LR = 60, 64, 2, 0.2, 2e-3
BASELINE = "torch.nn.LSTM"


class CharModel(nn.Module):
    """Embedding -> 2-layer LSTM -> Linear; `lstm` is either lstmkit.LSTM or torch.nn.LSTM."""

    def __init__(self, lstm: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED_DIM)
        self.lstm = lstm
        self.head = nn.Linear(hidden_size, VOCAB)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.embedding(ids))
        return self.head(y)


def build(name: str, hidden_size: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    if name == BASELINE:
        lstm = nn.LSTM(EMBED_DIM, hidden_size, num_layers=NUM_LAYERS, dropout=DROPOUT, batch_first=True)
    else:
        lstm = lstmkit.LSTM(EMBED_DIM, hidden_size, num_layers=NUM_LAYERS, dropout=DROPOUT, backend=name)
    return CharModel(lstm, hidden_size).to(device).train()


class Contender:
    """A model, its optimizer and a fixed pool of batches; `run(n)` times n training steps."""

    def __init__(self, name: str, args: argparse.Namespace, device: torch.device) -> None:
        self.name, self.device = name, device
        slow = name == "reference"
        self.steps = args.reference_steps if slow else args.steps
        self.rounds = min(args.reference_rounds, args.rounds) if slow else args.rounds
        self.warmup = min(args.warmup, 1) if slow else args.warmup
        self.model = build(name, args.hidden_size, device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(1)
        shape = (4, args.batch_size, args.seq_len + 1)
        self.batches = torch.randint(0, VOCAB, shape, generator=gen).to(device)
        self.tokens_per_step = args.batch_size * args.seq_len
        self.done = 0
        self.rates: list[float] = []

    def step(self) -> None:
        batch = self.batches[self.done % len(self.batches)]
        self.done += 1
        inputs, targets = batch[:, :-1], batch[:, 1:]
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(inputs)
        loss = self.loss_fn(logits.reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        self.optimizer.step()

    def run(self, n: int) -> float:
        """Runs n steps and returns seconds elapsed."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        for _ in range(n):
            self.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--backends",
        nargs="+",
        choices=list(BACKENDS),
        help="lstmkit backends to measure (default: all that run on --device); torch.nn.LSTM always runs",
    )
    p.add_argument("--steps", type=int, default=20, help="timed steps per contender per round")
    p.add_argument("--reference-steps", type=int, default=3, help="timed steps per round, reference backend")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reference-rounds", type=int, default=3, help="rounds that time the reference backend")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before round 1 (1 for the reference)")
    p.add_argument("--seq-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--hidden-size", type=int, default=300)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(N) first (default: torch's choice)")
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = (
        f"vocab {VOCAB}, embed {EMBED_DIM}, {NUM_LAYERS} x LSTM({args.hidden_size}), dropout {DROPOUT}, "
        f"seq_len {args.seq_len}, batch {args.batch_size}, Adam lr {LR}"
    )
    header = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
        f"load average at start {os.getloadavg()[0]:.2f}; {config}"
    )

    if args.backends is None:
        spec = lstmkit.LSTM(EMBED_DIM, args.hidden_size, num_layers=NUM_LAYERS, dropout=DROPOUT).spec
        args.backends = [n for n in BACKENDS if unsupported(n, spec, device=device, training=True) is None]
    contenders = [Contender(name, args, device) for name in [BASELINE, *args.backends]]
    for c in contenders:
        c.run(c.warmup)
    for r in range(args.rounds):
        for c in contenders if r % 2 == 0 else reversed(contenders):
            if r < c.rounds:
                c.rates.append(c.steps * c.tokens_per_step / c.run(c.steps))

    medians = {c.name: statistics.median(c.rates) for c in contenders}
    base = medians[BASELINE]
    print(header + "\n")
    print("| contender | median tokens/s | ratio vs torch.nn.LSTM |")
    print("|---|---:|---:|")
    for c in contenders:
        label = c.name if c.name == BASELINE else f"lstmkit backend={c.name!r}"
        print(f"| {label} | {medians[c.name]:,.0f} | {medians[c.name] / base:.3f} |")

    if args.json:
        results = {
            "header": header,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": str(device),
            "args": vars(args),
            "contenders": {
                c.name: {
                    "rounds": c.rounds,
                    "steps_per_round": c.steps,
                    "tokens_per_s": c.rates,
                    "median": medians[c.name],
                    "ratio_vs_torch_nn": medians[c.name] / base,
                }
                for c in contenders
            },
        }
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
