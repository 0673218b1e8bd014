"""`make bench`: run every bench/bench_*.py, write bench/results.json and print a table.

Each module's ``run()`` returns a dict of figures plus an optional ``"table"`` list of
preformatted rows. Benchmarks compare against a baseline measured side by side in the same
process (the machines are shared and noisy), so ratios matter more than absolute numbers.
Pass module names (e.g. ``python -m bench matcher``) to run a subset.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import pkgutil
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _modules(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if n.removeprefix("bench_") in selected or n in selected]
    return names


def main(argv: list[str]) -> int:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost,::1")
    results: dict = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "benchmarks": {},
    }
    failed = 0
    for name in _modules(argv):
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            outcome = module.run()
            if inspect.isawaitable(outcome):
                outcome = asyncio.run(outcome)
        except Exception as exc:  # noqa: BLE001 — a failing benchmark is reported, the others still run
            failed += 1
            traceback.print_exc()
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        for row in outcome.get("table", []):
            print("  " + row)
        results["benchmarks"][name.removeprefix("bench_")] = outcome
    out = HERE / "results.json"
    if argv and out.exists():
        # A subset run keeps the other benchmarks' last figures.
        try:
            previous = json.loads(out.read_text(encoding="utf-8")).get("benchmarks", {})
        except (ValueError, OSError):
            previous = {}
        results["benchmarks"] = {**previous, **results["benchmarks"]}
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
