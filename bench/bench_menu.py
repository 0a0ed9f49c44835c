"""Benchmark: menu load time, hours checks and whole simulated calls on the shipped menu.

Run: .venv/bin/python bench/bench_menu.py
Prints figures; asserts nothing. Later the FastAGI engine runs these on every call.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.menu.hours import Schedule
from ivr.menu.loader import load_menu
from ivr.simulate import simulate

CONFIG = Path(__file__).resolve().parent.parent / "config"
MX = ZoneInfo("America/Mexico_City")


def per_call_us(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e6
    return f"p50 {p50:8.1f} µs   p99 {p99:8.1f} µs"


def main() -> None:
    rng = random.Random(7)  # noqa: S311  # reproducible load, not cryptography
    loads = []
    for _ in range(20):
        start = time.perf_counter()
        loaded = load_menu(CONFIG)
        Schedule(loaded.menu)
        loads.append(time.perf_counter() - start)
    print(f"load + validate + schedule of config/menu.yaml: {per_call_us(loads)}")

    schedule = Schedule(load_menu(CONFIG).menu)
    base = datetime(2026, 1, 1, tzinfo=MX)
    instants = [base + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400)) for _ in range(5000)]
    areas = list(schedule.options)
    samples = []
    for instant in instants:
        area = rng.choice(areas)
        start = time.perf_counter()
        schedule.status(area, instant)
        samples.append(time.perf_counter() - start)
    print(f"hours status (random area and instant): {per_call_us(samples)}")

    scripts = [["1", "2"], ["2", "1"], ["3", "1"], ["9", "9", "9"], ["1", "3"], ["-", "-", "-"]]
    samples = []
    for instant in instants[:2000]:
        script = rng.choice(scripts)
        start = time.perf_counter()
        simulate(schedule, instant, script)
        samples.append(time.perf_counter() - start)
    print(f"whole simulated call (flow + hours, no I/O): {per_call_us(samples)}")
    print(f"  = about {1 / statistics.mean(samples):,.0f} call decisions per second on one core")


if __name__ == "__main__":
    main()
