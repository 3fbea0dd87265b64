"""Benchmark: synth cost of the reference app against a bare ALB + ASG app, and the whole test
suite against one synth. Prints figures; asserts nothing (speed is never a timed test).

    make bench        (or: .venv/bin/python tools/bench/bench.py [--runs 5] [--no-suite])

Budgets (DEVELOPERS.md): reference synth <= 1.25 x bare; whole suite <= 20 synths.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _synth_seconds(app: str | None, runs: int) -> list[float]:
    """Time `cdk synth` with the pinned CLI, as a user runs it (cdk.json's context applies)."""
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            command = [str(cdk), "synth", "--no-notices", "--quiet", "-o", out]
            if app is not None:
                command += ["--app", app]
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-suite", action="store_true", help="skip timing the test suite")
    args = parser.parse_args()

    bare = _synth_seconds(f"{sys.executable} tools/bench/bare_app.py", args.runs)
    reference = _synth_seconds(None, args.runs)
    bare_median, reference_median = statistics.median(bare), statistics.median(reference)
    print(
        f"bare ALB+ASG synth     median {bare_median:6.2f} s  "
        f"(runs: {', '.join(f'{t:.2f}' for t in bare)})"
    )
    print(
        f"reference app synth    median {reference_median:6.2f} s  "
        f"(runs: {', '.join(f'{t:.2f}' for t in reference)})"
    )
    print(f"reference / bare       {reference_median / bare_median:6.2f} x   (budget 1.25 x)")
    if not args.no_suite:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        suite = time.perf_counter() - start
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "?"
        print(f"test suite             {suite:6.2f} s  ({summary})")
        print(f"suite / reference synth {suite / reference_median:5.1f} synths (budget 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
