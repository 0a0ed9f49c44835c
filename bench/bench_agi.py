"""Benchmark: the FastAGI engine under 1,000 concurrent calls, on one core.

Run: .venv/bin/python bench/bench_agi.py [--concurrency 1000] [--calls 5000]

The service (AgiServer + CallEngine on config/menu.yaml, records built by CallLog into
a counting sink) runs in a child process pinned to CPU 0; the fake Asterisk
(ivr.testing) runs here, pinned to CPU 1, and places the calls over TCP, answering
every command with Asterisk's bytes. Each call walks greeting, main menu, submenu and
routing: 16 AGI commands.

Phases:
1. idle: 100 calls one at a time, then the service's resident memory (VmRSS);
2. hold: --concurrency calls arriving over --ramp seconds, each prompt "playing" for
   --play seconds, so that all of them are in their menus together; the service's VmRSS
   is read then, and memory per active call = (held - idle) / calls in progress;
3. saturation: --calls calls with --concurrency in flight and instant prompts: the
   most calls per second one core can take, and the CPU each AGI command costs.

Turnaround per AGI command is measured on both sides: by the engine (from the arrival
of a reply to the sending of the next command, AgiSession.on_turnaround) and by the
fake Asterisk (from writing a reply to receiving the next command: the loopback hop,
both event loops' queueing, and the fake's own Python parsing are included, so it is
an upper bound). Prints figures; asserts nothing. Records go to a counting sink, or with
``--records postgres`` through the real recorder into a throw-away embedded
PostgreSQL (the call path never waits for it: compare the turnarounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

from ivr.metrics import Metrics
from ivr.testing import CallResult, FakeAsterisk, ScriptedCaller

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ["2", "1"]  # servicios -> atención ciudadana: routed on a Monday morning
AT = "at=2026-12-07T09:00"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


# --- the service side (child process) ---------------------------------------------


async def serve(port: int, records: str, with_metrics: bool = False) -> None:
    import tempfile  # noqa: PLC0415 - only the child needs these
    from contextlib import AsyncExitStack  # noqa: PLC0415

    from ivr.agi.server import AgiServer  # noqa: PLC0415
    from ivr.engine import CallEngine, EngineSettings  # noqa: PLC0415
    from ivr.logging import configure_logging  # noqa: PLC0415
    from ivr.menu.store import MenuStore  # noqa: PLC0415
    from ivr.records.calllog import Sink  # noqa: PLC0415
    from ivr.records.service import open_recorder  # noqa: PLC0415
    from ivr.settings import load_settings  # noqa: PLC0415

    configure_logging("json", "warning")

    class Counter:
        records = 0

        def submit(self, record: object) -> None:
            del record
            self.records += 1

    async with AsyncExitStack() as stack:
        sink: Sink = Counter()
        if records == "postgres":
            # The real recorder into a throw-away embedded PostgreSQL (its processes are
            # not pinned: they share the machine with both sides).
            data = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-agi-"))
            recorder = await stack.enter_async_context(
                open_recorder(load_settings({"IVR_DATA_DIR": data}))
            )
            sink = recorder
        samples: list[float] = []
        on_turnaround: Callable[[float], None] = samples.append
        metrics = Metrics() if with_metrics else None
        if metrics is not None:
            # The service's own wiring: every turnaround also goes into the histogram.
            def both(seconds: float) -> None:
                samples.append(seconds)
                metrics.command_turnaround(seconds)

            on_turnaround = both
        store = MenuStore(ROOT / "config")
        engine = CallEngine(store, sink, EngineSettings(allow_time_override=True), metrics=metrics)
        server = AgiServer(
            engine,
            host="127.0.0.1",
            port=port,
            peer_allowed=lambda _address: True,
            max_calls=100_000,
            env_timeout=30,
            reply_timeout=60,
            on_turnaround=on_turnaround,
        )
        if metrics is not None:
            menu = store.current.loaded.menu
            metrics.prepare(
                [(v, a) for v, vertiente in menu.vertientes.items() for a in vertiente.areas],
                menu.queues,
            )
            metrics.watch_server(server)
        await server.start()
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "REPORT":
                report = percentiles(samples) if samples else "no commands"
                samples.clear()
                if metrics is not None:
                    started = time.perf_counter()
                    size = len(generate_latest(metrics.registry))
                    took = (time.perf_counter() - started) * 1000
                    report += f"; a /metrics scrape: {size:,} bytes in {took:.2f} ms"
                print(report, flush=True)  # one line: the parent reads one per REPORT
        await server.shutdown(5)
        if records == "postgres":
            await recorder.close()
            stats = recorder.stats
            print(
                f"records: {stats.written:,} written to PostgreSQL, {stats.spooled:,} spooled, "
                f"{stats.rejected:,} rejected",
                flush=True,
            )


# --- the Asterisk side (this process) -----------------------------------------------


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {pct(0.50):.2f} ms, p90 {pct(0.90):.2f} ms, p99 {pct(0.99):.2f} ms, "
        f"p99.9 {pct(0.999):.2f} ms, max {ordered[-1] * 1000:.2f} ms "
        f"({len(ordered):,} commands)"
    )


async def place(
    port: int, calls: int, concurrency: int, play: float, ramp: float = 0.0
) -> list[CallResult]:
    """``calls`` calls, ``concurrency`` at a time; the first wave arrives over ``ramp`` s."""
    fake = FakeAsterisk("127.0.0.1", port, play_seconds=play, timeout=600)
    results: list[CallResult] = []
    queue = iter(range(calls))
    workers = min(concurrency, calls)

    async def worker(index: int) -> None:
        await asyncio.sleep(ramp * index / workers)
        for _ in queue:
            result = await fake.call(ScriptedCaller(answers=list(ANSWERS)), query=AT)
            results.append(result)

    await asyncio.gather(*(worker(index) for index in range(workers)))
    return results


def service_report(child: subprocess.Popen[str]) -> str:
    if child.stdin is None or child.stdout is None:
        raise RuntimeError("the service's pipes are closed")
    child.stdin.write("REPORT\n")
    child.stdin.flush()
    return child.stdout.readline().strip()


def check(results: list[CallResult]) -> None:
    bad = [r for r in results if r.variables.get("IVR_OUTCOME") != "routed"]
    if bad:
        raise SystemExit(f"{len(bad)} calls were not routed: {bad[0].agi_status}")


async def run(args: argparse.Namespace, child: subprocess.Popen[str]) -> None:
    port = args.port
    await place(port, 100, 1, 0.0)
    idle = rss_kib(child.pid)
    service_report(child)
    print(f"idle service after 100 calls: VmRSS {idle / 1024:.1f} MiB")

    # Hold: calls arrive over --ramp seconds and each prompt plays --play seconds, so
    # every call is still in its menus when the last one arrives.
    held_task = asyncio.create_task(
        place(port, args.concurrency, args.concurrency, args.play, ramp=args.ramp)
    )
    await asyncio.sleep(args.ramp + args.play)
    held = rss_kib(child.pid)
    results = await held_task
    check(results)
    per_call = (held - idle) * 1024 / args.concurrency
    print(
        f"hold: {args.concurrency:,} calls arriving over {args.ramp:g} s, prompts {args.play:g} s "
        f"each, all in progress together: VmRSS {held / 1024:.1f} MiB, "
        f"{per_call / 1024:.1f} KiB per active call"
    )
    print(f"  engine turnaround per AGI command (service side): {service_report(child)}")
    print(
        "  turnaround per AGI command (Asterisk side, incl. loopback): "
        f"{percentiles([t for r in results for t in r.turnaround])}"
    )

    started, cpu_before = time.perf_counter(), cpu_seconds(child.pid)
    results = await place(port, args.calls, args.concurrency, 0.0)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(child.pid) - cpu_before
    check(results)
    commands = sum(len(r.commands) for r in results)
    print(
        f"saturation: {args.calls:,} calls, {args.concurrency:,} in flight, no prompt time: "
        f"{args.calls / elapsed:,.0f} calls/s, {commands / elapsed:,.0f} AGI commands/s "
        f"in {elapsed:.2f} s"
    )
    print(
        f"  service CPU: {cpu:.2f} s ({cpu / elapsed:.0%} of its core), "
        f"{cpu / commands * 1e6:.0f} µs per AGI command, {cpu / args.calls * 1e3:.2f} ms per call"
    )
    print(f"  engine turnaround per AGI command (service side): {service_report(child)}")
    print(
        "  turnaround per AGI command (Asterisk side, queueing included): "
        f"{percentiles([t for r in results for t in r.turnaround])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--play", type=float, default=1.5, help="seconds per prompt in 'hold'")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which calls arrive")
    parser.add_argument("--port", type=int, default=45730)
    parser.add_argument(
        "--records",
        choices=("count", "postgres"),
        default="count",
        help="where call records go: a counting sink, or the real recorder into PostgreSQL",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="the service's Prometheus metrics on, as in production",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        pin(0)
        if os.environ.get("IVR_BENCH_PROFILE"):
            import cProfile  # noqa: PLC0415

            cProfile.runctx(
                "asyncio.run(serve(port, rec))",
                {"asyncio": asyncio, "serve": serve, "port": args.port, "rec": args.records},
                {},
                os.environ["IVR_BENCH_PROFILE"],
            )
        else:
            asyncio.run(serve(args.port, args.records, args.metrics))
        return
    pin(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"service pinned to CPU 0 (records: {args.records}, metrics: {args.metrics}),"
        " fake Asterisk pinned to CPU 1"
    )
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and file
        [
            *(sys.executable, __file__, "--serve", "--port", str(args.port)),
            *("--records", args.records),
            *(["--metrics"] if args.metrics else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if child.stdout is None or child.stdout.readline().strip() != "READY":
            raise SystemExit("the service did not start")
        asyncio.run(run(args, child))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        if child.stdout is not None:
            for line in child.stdout:  # what the service says as it stops
                print(line.rstrip())
        child.wait(timeout=60)


if __name__ == "__main__":
    main()
