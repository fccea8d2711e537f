"""Workloads W1-W6 (benchmarks/workloads.py) in lstmkit and in its peers, one process per contender.

Contenders: the plain PyTorch model (torch.nn.LSTM + torch.optim, the baseline of every ratio), lstmkit with
each backend (and bf16 where asked), and Keras 3 with the TensorFlow and the JAX backends, each in its own
virtual environment that keras_env.py creates on first use. For every workload, each contender runs in a
fresh process (bench_torch.py or bench_keras.py) that warms up and then times --repeats repeats; this is
done --rounds times, the order of contenders reversed every other round, and the rates of all rounds pooled.
The table gives the median and the min rate, the ratio of medians to the plain PyTorch model, and the
achieved GFLOP/s of the matrix products against the fp32 matrix-product peak measured at the start.

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


def table(results: dict[str, dict[str, list[float]]], units: dict[str, str], peak: float) -> str:
    rows = ["| workload | contender | median | min | ratio vs PyTorch | GFLOP/s | % of fp32 peak |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for workload, by_contender in results.items():
        base = by_contender.get(BASELINE)
        base_median = statistics.median(base) if base else None
        for contender, rates in by_contender.items():
            median = statistics.median(rates)
            ratio = f"{median / base_median:.2f}" if base_median else "-"
            gflops = median * flops_per_item(workload) / 1e9
            rows.append(
                f"| {workload} | {contender} | {median:,.0f} {units[workload]}/s | {min(rates):,.0f} | {ratio} "
                f"| {gflops:.1f} | {100 * gflops / peak:.0f}% |"
            )
    return "\n".join(rows)


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
    results: dict[str, dict[str, list[float]]] = {}
    units: dict[str, str] = {}
    started = time.time()
    for workload in args.workloads:
        results[workload] = {}
        for round_ in range(args.rounds):
            order = args.contenders if round_ % 2 == 0 else args.contenders[::-1]
            for contender in order:
                record = run_one(contender, workload, args)
                if record is None:
                    continue
                units[workload] = record["unit"]
                results[workload].setdefault(contender, []).extend(record["rates"])
                print(f"  {workload} {contender} round {round_ + 1}: "
                      f"median {statistics.median(record['rates']):,.0f} {record['unit']}/s", flush=True)
        results[workload] = {c: results[workload][c] for c in args.contenders if c in results[workload]}
    text = table({w: r for w, r in results.items() if r}, units, peak32)
    print(f"\n{header}; {time.time() - started:.0f} s in all\n\n{text}")
    if args.markdown:
        args.markdown.write_text(f"{header}\n\n{text}\n")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rates": results}, indent=1))


if __name__ == "__main__":
    main()
