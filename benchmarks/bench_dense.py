"""lstmkit.Linear against torch.nn.Linear on the heads of the benchmark's language models, in one process.

A training step's three products of a Dense head (forward, the input's gradient, the weight's gradient) are
timed for both layers, alternating between them round by round; the table gives the median time per step
and its ratio (torch's time over lstmkit's, above 1 when lstmkit is faster). Float32 on the CPU, where
lstmkit.Linear runs the extension's kernel; elsewhere it is torch's F.linear and there is nothing to time.

Run:
    python benchmarks/bench_dense.py            # --rounds, --steps, --threads
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import workloads as wl

import lstmkit
from lstmkit.backends import dense

SHAPES = {  # name: (rows = batch x sequence, inputs, outputs)
    "W1 head": (wl.W1.batch * wl.W1.seq_len, wl.W1.hidden, wl.W1.outputs),
    "W5 head": (wl.W5.batch * wl.W5.seq_len, wl.W5.hidden, wl.W5.outputs),
}


def step_time(layer: nn.Linear, x: torch.Tensor, g: torch.Tensor, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        y = layer(x)
        y.backward(g)
        layer.weight.grad = layer.bias.grad = x.grad = None
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds x {args.steps} steps\n")
    print("| head | rows x in -> out | torch.nn.Linear | lstmkit.Linear | ratio | lstmkit GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (rows, n_in, n_out) in SHAPES.items():
        torch.manual_seed(wl.SEED)
        theirs = nn.Linear(n_in, n_out)
        ours = lstmkit.Linear(n_in, n_out)
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(rows, n_in, requires_grad=True)
        g = torch.randn(rows, n_out)
        if not dense.applies(x, ours.weight):
            print(f"| {name} | lstmkit.Linear runs torch's F.linear here (see backends/dense.py) | | | | |")
            continue
        times: dict[str, list[float]] = {"torch": [], "lstmkit": []}
        layers = {"torch": theirs, "lstmkit": ours}
        for k in range(args.rounds):
            order = ("torch", "lstmkit") if k % 2 == 0 else ("lstmkit", "torch")
            for who in order:
                step_time(layers[who], x, g, 2)  # warm-up
                times[who].append(step_time(layers[who], x, g, args.steps))
        t_torch, t_ours = statistics.median(times["torch"]), statistics.median(times["lstmkit"])
        flops = 3 * 2.0 * rows * n_in * n_out
        print(f"| {name} | {rows} x {n_in} -> {n_out} | {t_torch * 1e3:.1f} ms | {t_ours * 1e3:.1f} ms "
              f"| {t_torch / t_ours:.2f} | {flops / t_ours / 1e9:.0f} |")


if __name__ == "__main__":
    main()
