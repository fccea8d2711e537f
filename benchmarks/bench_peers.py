"""Workloads W1-W6 (benchmarks/workloads.py) in lstmkit and in its peers, one process per contender.

Contenders: the plain PyTorch model (torch.nn.LSTM + torch.optim, the baseline of every ratio), lstmkit with
each backend (and bf16 where asked), and Keras 3 with the TensorFlow and the JAX backends, each in its own
virtual environment that keras_env.py creates on first use. For every workload, each contender runs in a
fresh process (bench_torch.py or bench_keras.py) that warms up and then times --repeats repeats; this is
done --rounds times, the order of contenders reversed every other round, and the rates of all rounds pooled.
The table gives the median and the min rate, the ratio of medians to the plain PyTorch model, and the
achieved GFLOP/s of the matrix products against the fp32 matrix-product peak measured at the start.

On a shared machine the speed of the whole machine drifts between rounds by more than contenders differ, so
ratios are also given paired: per round, a contender's median over the baseline's median in the same round
(processes run back to back), as the lowest, middle and highest over the rounds. A second table pairs every
lstmkit contender with every Keras contender the same way.

Run (about 20 minutes with the Keras environments already made):
    python benchmarks/bench_peers.py --markdown benchmarks/results-peers.md
    python benchmarks/bench_peers.py --workloads W3 W6-gen --contenders pytorch lstmkit-fused --rounds 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import workloads as wl  # noqa: E402

WORKLOADS = [*wl.TRAINING, "W6-gen", "W6-bulk"]
CONTENDERS = ["pytorch", "lstmkit-torch", "lstmkit-fused", "keras-tensorflow", "keras-jax"]
BASELINE = "pytorch"


def matmul_peak(dtype: torch.dtype, threads: int, n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of an n x n matrix product, the median of ``repeats``."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def command(contender: str, workload: str, args: argparse.Namespace) -> list[str]:
    common = ["--workload", workload, "--repeats", str(args.repeats), "--min-seconds", str(args.min_seconds),
              "--threads", str(args.threads)]
    if contender.startswith("keras-"):
        from keras_env import ensure_env

        backend = contender.split("-", 1)[1]
        python = ensure_env(backend)
        return [str(python), str(HERE / "bench_keras.py"), "--backend", backend, *common]
    return [sys.executable, str(HERE / "bench_torch.py"), "--contender", contender, *common]


def run_one(contender: str, workload: str, args: argparse.Namespace) -> dict | None:
    cmd = command(contender, workload, args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print(f"  {contender} {workload}: failed ({done.returncode}): {' | '.join(tail)}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def flops_per_item(workload: str) -> float:
    if workload == "W6-gen":
        return wl.generation_flops_per_char()
    if workload == "W6-bulk":
        return wl.W1.forward_flops_per_batch() / (wl.W1.batch * wl.W1.seq_len)
    w = wl.TRAINING[workload]
    return w.train_flops_per_batch() / w.items_per_batch


Rounds = list[list[float] | None]  # per round, one process's rates (None: it failed)


def paired(rounds: Rounds, base: Rounds) -> str:
    """Per-round ratios of medians, as "lowest / middle / highest" over the rounds both ran."""
    ratios = sorted(
        statistics.median(a) / statistics.median(b) for a, b in zip(rounds, base, strict=True) if a and b
    )
    if not ratios:
        return "-"
    return " / ".join(f"{r:.2f}" for r in (ratios[0], statistics.median(ratios), ratios[-1]))


def pooled(rounds: Rounds) -> list[float]:
    return [rate for rates in rounds if rates for rate in rates]


def table(results: dict[str, dict[str, Rounds]], units: dict[str, str], peak: float) -> str:
    rows = ["| workload | contender | median | min | ratio vs PyTorch | per round: low / mid / high | GFLOP/s "
            "| % of fp32 peak |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for workload, by_contender in results.items():
        base = by_contender.get(BASELINE)
        base_median = statistics.median(pooled(base)) if base else None
        for contender, rounds in by_contender.items():
            rates = pooled(rounds)
            median = statistics.median(rates)
            ratio = f"{median / base_median:.2f}" if base_median else "-"
            per_round = paired(rounds, base) if base else "-"
            gflops = median * flops_per_item(workload) / 1e9
            rows.append(
                f"| {workload} | {contender} | {median:,.0f} {units[workload]}/s | {min(rates):,.0f} | {ratio} "
                f"| {per_round} | {gflops:.1f} | {100 * gflops / peak:.0f}% |"
            )
    return "\n".join(rows)


def against_keras(results: dict[str, dict[str, Rounds]]) -> str:
    """Every lstmkit contender over every Keras contender, paired per round as in ``paired``."""
    rows = ["| workload | lstmkit | Keras | per round: low / mid / high |", "|---|---|---|---:|"]
    for workload, by_contender in results.items():
        for ours, our_rounds in by_contender.items():
            for theirs, their_rounds in by_contender.items():
                if ours.startswith("lstmkit-") and theirs.startswith("keras-"):
                    rows.append(f"| {workload} | {ours} | {theirs} | {paired(our_rounds, their_rounds)} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=WORKLOADS, choices=WORKLOADS)
    parser.add_argument("--contenders", nargs="+", default=CONTENDERS)
    parser.add_argument("--rounds", type=int, default=2, help="processes per contender, order alternating")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats in each process")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="length of one timed repeat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a contender is given up")
    parser.add_argument("--json", type=Path, help="write every rate here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args()

    peak32 = matmul_peak(torch.float32, args.threads)
    peak16 = matmul_peak(torch.bfloat16, args.threads)
    header = (f"torch {torch.__version__}, {args.threads} threads, matrix-product peak fp32 {peak32:.0f} GFLOP/s, "
              f"bf16 {peak16:.0f} GFLOP/s; {args.rounds} rounds x {args.repeats} repeats of {args.min_seconds} s")
    print(header)
    results: dict[str, dict[str, Rounds]] = {}
    units: dict[str, str] = {}
    started = time.time()
    for workload in args.workloads:
        results[workload] = {c: [None] * args.rounds for c in args.contenders}
        for round_ in range(args.rounds):
            order = args.contenders if round_ % 2 == 0 else args.contenders[::-1]
            for contender in order:
                record = run_one(contender, workload, args)
                if record is None:
                    continue
                units[workload] = record["unit"]
                results[workload][contender][round_] = record["rates"]
                print(f"  {workload} {contender} round {round_ + 1}: "
                      f"median {statistics.median(record['rates']):,.0f} {record['unit']}/s", flush=True)
        results[workload] = {c: r for c, r in results[workload].items() if any(r)}
    results = {w: r for w, r in results.items() if r}
    text = table(results, units, peak32)
    keras = against_keras(results)
    if keras:
        text += f"\n\nAgainst Keras, paired per round:\n\n{keras}"
    print(f"\n{header}; {time.time() - started:.0f} s in all\n\n{text}")
    if args.markdown:
        args.markdown.write_text(f"{header}\n\n{text}\n")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rounds": results}, indent=1))


if __name__ == "__main__":
    main()
