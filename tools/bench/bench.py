"""Benchmark: synth cost of the reference app against a bare ALB + ASG app, and the whole test
suite against one synth. Prints figures; asserts nothing (speed is never a timed test).

    make bench        (or: .venv/bin/python tools/bench/bench.py [--runs 5] [--no-suite])

Budgets (DEVELOPERS.md): reference synth <= 1.25 x bare with a warm wheelhouse cache; the whole
suite <= 40 synths, the unit and template tests alone <= 5. The reference app's first synth
resolves its wheelhouse (pip download, PyPI): it is timed once with an empty cache (cold), then
the runs reuse that cache (warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _synth_seconds(app: str | None, runs: int, cache: str | None = None) -> list[float]:
    """Time `cdk synth` with the pinned CLI, as a user runs it (cdk.json's context applies),
    with the wheelhouse cache in ``cache`` when given."""
    env = dict(os.environ)
    if cache is not None:
        env["GUNICORN_ALB_WHEELHOUSE_CACHE"] = cache
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            command = [str(cdk), "synth", "--no-notices", "--quiet", "-o", out]
            if app is not None:
                command += ["--app", app]
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
            times.append(time.perf_counter() - start)
    return times


def _pytest_seconds(paths: list[str]) -> tuple[float, str]:
    """Wall time of pytest on PATHS (the whole suite when empty), and its summary line."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    return seconds, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "?"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-suite", action="store_true", help="skip timing the test suite")
    args = parser.parse_args()

    bare = _synth_seconds(f"{sys.executable} tools/bench/bare_app.py", args.runs)
    with tempfile.TemporaryDirectory() as cache:
        (cold,) = _synth_seconds(None, 1, cache)
        reference = _synth_seconds(None, args.runs, cache)
    bare_median, reference_median = statistics.median(bare), statistics.median(reference)
    print(
        f"bare ALB+ASG synth     median {bare_median:6.2f} s  "
        f"(runs: {', '.join(f'{t:.2f}' for t in bare)})"
    )
    print(f"reference app synth    cold   {cold:6.2f} s  (empty wheelhouse cache: pip download)")
    print(
        f"reference app synth    median {reference_median:6.2f} s  warm "
        f"(runs: {', '.join(f'{t:.2f}' for t in reference)})"
    )
    print(f"reference / bare       {reference_median / bare_median:6.2f} x   (budget 1.25 x)")
    if not args.no_suite:
        for label, paths, budget in (
            ("unit + template tests", ["tests/unit", "tests/template"], 5),
            ("test suite", [], 40),
        ):
            seconds, summary = _pytest_seconds(paths)
            print(f"{label:<22} {seconds:6.2f} s  ({summary})")
            print(
                f"{label} / reference synth {seconds / reference_median:5.1f} synths "
                f"(budget {budget})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
