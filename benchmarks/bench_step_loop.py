"""The per-call cost of the generation loop users write themselves, lstmkit.LSTM beside torch.nn.LSTM.

The loop is the one of most PyTorch generation code: ``y, state = lstm(x_t, state)``, one step at a time,
batch 1, no gradients, the state carried. The model is W1's (2 x LSTM(300), 65 input features); each round
times 300 steps of every contender, in an order that is reversed every other round, and the result is the
median over rounds of each contender's time per step, with its ratio to torch.nn.LSTM's (below 1 is faster).
What is measured is mostly the Python overhead of one call: at batch 1 the products are tiny, so the
benchmark runs on one thread (``--threads``), where a busy machine does not make threads wait on each other.

Run:
    python benchmarks/bench_step_loop.py --rounds 15
"""

import argparse
import statistics
import time

import torch

import lstmkit

INPUT, HIDDEN, LAYERS = 65, 300, 2


def contenders(backends: list[str]) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    reference = torch.nn.LSTM(INPUT, HIDDEN, LAYERS, batch_first=True).eval()
    found: dict[str, torch.nn.Module] = {"torch.nn.LSTM": reference}
    for backend in backends:
        lstm = lstmkit.LSTM(INPUT, HIDDEN, LAYERS, backend=backend).eval()
        lstm.load_state_dict(reference.state_dict())
        found[f"lstmkit-{backend}"] = lstm
    return found


@torch.inference_mode()
def loop(lstm: torch.nn.Module, xs: torch.Tensor) -> float:
    """Seconds per step of the user-written loop over xs (T, 1, 1, I)."""
    state = None
    start = time.perf_counter()
    for x_t in xs:
        _, state = lstm(x_t, state)
    return (time.perf_counter() - start) / xs.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--backends", nargs="+", default=["auto", "torch", "fused"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = contenders(args.backends)
    xs = torch.randn(args.steps, 1, 1, INPUT)
    for lstm in models.values():
        loop(lstm, xs[:20])                                                   # warm-up: builds, autotune
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(loop(models[name], xs))
    base = statistics.median(times["torch.nn.LSTM"])
    print(f"{'contender':<16} {'us/step':>8} {'vs torch':>9}   (median of {args.rounds} rounds x {args.steps} steps, "
          f"{args.threads} thread(s))")
    for name in names:
        median = statistics.median(times[name])
        print(f"{name:<16} {median * 1e6:8.1f} {median / base:8.2f}x")


if __name__ == "__main__":
    main()
