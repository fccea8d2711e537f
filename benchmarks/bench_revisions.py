"""Two source trees of lstmkit on the same workloads, to tell whether a change moved the speed.

Runs ``bench_torch.py`` for each contender with this tree's ``src`` and with another checkout's (``--base``, e.g.
a ``git worktree`` at the previous commit), alternating which goes first every round, and prints, per workload
and contender, the rates of both and the per-round ratio (this tree over the base, lowest / middle / highest).
Plain PyTorch is the same in both trees and is run once per round as the yardstick of the machine's drift.

Run:
    git worktree add ../lstmkit-base HEAD~1
    python benchmarks/bench_revisions.py --base ../lstmkit-base --workloads W1 W3 --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6-gen", "W6-bulk"]


def _run(src: Path, contender: str, workload: str, args: argparse.Namespace) -> float:
    """Median rate of one process of bench_torch.py importing lstmkit from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, str(HERE / "bench_torch.py"), "--contender", contender, "--workload", workload,
               "--repeats", str(args.repeats), "--min-seconds", str(args.min_seconds), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"{contender} on {workload} failed:\n{done.stderr[-2000:]}")
    line = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(line["rates"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="checkout of the tree to compare against")
    parser.add_argument("--workloads", nargs="+", default=WORKLOADS, choices=WORKLOADS)
    parser.add_argument("--contenders", nargs="+", default=["lstmkit-auto", "lstmkit-fused"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each process (1 on a busy machine)")
    args = parser.parse_args()
    trees = {"this": HERE.parent / "src", "base": args.base.resolve() / "src"}
    print("| workload | contender | this tree | base tree | this / base per round: low / mid / high | "
          "plain PyTorch per round |")
    print("|---|---|---:|---:|---:|---|")
    for workload in args.workloads:
        rates: dict[tuple[str, str], list[float]] = {}
        torch_rates = []
        for r in range(args.rounds):
            torch_rates.append(_run(trees["this"], "pytorch", workload, args))
            for contender in args.contenders:
                order = ("this", "base") if r % 2 == 0 else ("base", "this")
                for tree in order:
                    rates.setdefault((contender, tree), []).append(_run(trees[tree], contender, workload, args))
        for contender in args.contenders:
            this, base = rates[(contender, "this")], rates[(contender, "base")]
            ratios = sorted(t / b for t, b in zip(this, base, strict=True))
            print(f"| {workload} | {contender} | {statistics.median(this):,.0f} | {statistics.median(base):,.0f} | "
                  f"{ratios[0]:.3f} / {statistics.median(ratios):.3f} / {ratios[-1]:.3f} | "
                  f"{', '.join(f'{v:,.0f}' for v in torch_rates)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
