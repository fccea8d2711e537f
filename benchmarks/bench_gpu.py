"""Training-step time of the triton backend's LSTM variants against cuDNN's standard cell, on a CUDA device.

The W1 stack (benchmarks/workloads.py): 2 x LSTM(300), dropout 0.2 between the layers, sequence 50,
batch 30, 60 input features, float32. One step is the stack's forward and the backward of a fixed random
linear read-out of its output (gradients of the input and every parameter); no optimiser. Contenders:
the torch backend (cuDNN) with the standard cell, and the triton backend with the standard cell, with
recurrent_dropout=0.25, with zoneout=0.1 and with layer_norm=True. Each is warmed up (Triton compiles
its kernels then), then timed for --steps steps in each of --rounds rounds, in an order reversed every
other round; the table gives each one's median milliseconds per step and its ratio to cuDNN's (the aim
for the variants: within 1.5x).

Run:
    python benchmarks/bench_gpu.py
    python benchmarks/bench_gpu.py --rounds 9 --json results.json
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import workloads as wl

import lstmkit
from lstmkit.backends import unsupported

W = wl.W1
BASELINE = "torch (cuDNN), standard cell"
CONTENDERS = {
    BASELINE: ("torch", {}),
    "triton, standard cell": ("triton", {}),
    "triton, recurrent_dropout=0.25": ("triton", {"recurrent_dropout": 0.25}),
    "triton, zoneout=0.1": ("triton", {"zoneout": 0.1}),
    "triton, layer_norm=True": ("triton", {"layer_norm": True}),
}
TARGET = 1.5


class Contender:
    """One stack and a fixed input; ``run(n)`` times n training steps."""

    def __init__(self, name: str, device: torch.device) -> None:
        backend, features = CONTENDERS[name]
        torch.manual_seed(0)
        self.name = name
        self.lstm = lstmkit.LSTM(
            W.input_size, W.hidden, num_layers=W.layers, dropout=W.dropout, backend=backend, **features
        ).to(device).train()
        gen = torch.Generator().manual_seed(1)
        self.x = torch.randn(W.batch, W.seq_len, W.input_size, generator=gen).to(device).requires_grad_()
        self.readout = torch.randn(W.batch, W.seq_len, W.hidden, generator=gen).to(device)
        self.ms: list[float] = []

    def step(self) -> None:
        y, _ = self.lstm(self.x)
        (y * self.readout).sum().backward()

    def run(self, n: int) -> float:
        """Runs n steps; returns milliseconds per step."""
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            self.step()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000 / n


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per contender per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before round 1")
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA device (torch.cuda.is_available() is False); nothing measured")
        return
    device = torch.device("cuda")
    spec = lstmkit.LSTM(W.input_size, W.hidden, layer_norm=True).spec
    reason = unsupported("triton", spec, device=device, training=True)
    if reason is not None:
        raise SystemExit(f"the triton backend cannot run here: {reason}")

    contenders = [Contender(name, device) for name in CONTENDERS]
    for c in contenders:
        c.run(args.warmup)
    for r in range(args.rounds):
        for c in contenders if r % 2 == 0 else reversed(contenders):
            c.ms.append(c.run(args.steps))

    medians = {c.name: statistics.median(c.ms) for c in contenders}
    base = medians[BASELINE]
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}; {W.layers} x LSTM({W.hidden}), "
        f"dropout {W.dropout}, seq_len {W.seq_len}, batch {W.batch}, input {W.input_size}, float32; "
        f"forward + backward\n"
    )
    print(f"| contender | median ms / step | ratio vs cuDNN standard cell (aim <= {TARGET}) |")
    print("|---|---:|---:|")
    for c in contenders:
        print(f"| {c.name} | {medians[c.name]:.3f} | {medians[c.name] / base:.2f} |")

    if args.json:
        results = {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device),
            "args": vars(args),
            "contenders": {
                c.name: {"ms_per_step": c.ms, "median": medians[c.name], "ratio_vs_cudnn": medians[c.name] / base}
                for c in contenders
            },
        }
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
