"""The service's Prometheus metrics, on a registry of their own.

:class:`Metrics` owns every metric. The registry is injected (tests pass a fresh one
and read values with ``registry.get_sample_value``); the service builds one at start.
Two kinds of source feed it:

* events counted as they happen (a call ended, a step took so long, an AGI command
  turned around, an AMI reconnect): the call path calls a method, which only adds to
  a counter or a histogram bucket;
* state read at scrape time (active calls, the records queue and spool, the AGI
  server's refusals, the live queue gauges): :meth:`Metrics.watch_server`,
  :meth:`Metrics.watch_recorder` and :meth:`Metrics.watch_queues` register providers,
  and a collector reads them when Prometheus scrapes, so nothing polls.

No label carries caller data. Label values come from bounded sets: the menu's own keys
(vertiente, area, queue: an admin's list, not the callers'), fixed outcomes and step
kinds, or ``other`` for a queue name the menu does not know.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr import __version__
from ivr.agi.server import ServerStats
from ivr.records.model import OUTCOMES
from ivr.records.recorder import RecorderStats

__all__ = [
    "QUEUE_RESULTS",
    "Metrics",
    "QueueGauges",
    "RecorderView",
    "ServerView",
    "step_kind",
]

NONE: Final = "none"
OTHER: Final = "other"
QUEUE_RESULTS: Final = ("answered", "abandoned", "timeout", "left", "unknown")
MEMBER_STATES: Final = ("logged_in", "available", "paused")

# AGI turnarounds are sub-millisecond when healthy; the tail that matters is 5 ms+.
_COMMAND_BUCKETS: Final = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
# A menu step is a prompt plus the caller's answer: seconds to a minute.
_STEP_BUCKETS: Final = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300)
# Queue waits: the service level is a minute; the dialplan's timeout is 300 s.
_WAIT_BUCKETS: Final = (5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1200)


def step_kind(step: str) -> str:
    """``submenu:programas`` → ``submenu``: the step's kind, a bounded label value."""
    return step.partition(":")[0] or NONE


class ServerView(Protocol):
    """What the FastAGI server exposes (:class:`ivr.agi.server.AgiServer`)."""

    @property
    def active_calls(self) -> int: ...

    @property
    def stats(self) -> ServerStats: ...


class RecorderView(Protocol):
    """What the write-behind recorder exposes (:class:`ivr.records.recorder.Recorder`)."""

    @property
    def queue_depth(self) -> int: ...

    def spool_bytes(self) -> int: ...

    @property
    def stats(self) -> RecorderStats: ...


@dataclass(frozen=True, slots=True)
class QueueGauges:
    """One queue's live state, from AMI QueueSummary/QueueStatus."""

    callers: int
    longest_wait_seconds: float
    logged_in: int
    available: int
    paused: int


class Metrics:
    """Every metric of the service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The ``*_created`` series double the output and no dashboard or rule reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "ivr_calls",
            "Calls ended by the IVR, by vertiente, area and outcome.",
            ("vertiente", "area", "outcome"),
            registry=r,
        )
        self.agi_command_seconds = Histogram(
            "ivr_agi_command_seconds",
            "Time from an AGI reply's arrival to the next command sent (the service's own"
            " latency per command).",
            buckets=_COMMAND_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "ivr_menu_step_seconds",
            "How long callers spend in each kind of menu step, prompt and answer included.",
            ("step",),
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.menu_reloads = Counter(
            "ivr_menu_reloads", "Menu reloads by result.", ("result",), registry=r
        )
        self.menu_info = Gauge(
            "ivr_menu_info", "The menu being served (value 1).", ("version",), registry=r
        )
        self.menu_file_rejected = Gauge(
            "ivr_menu_file_rejected",
            "1 while the menu file on disk has errors and the previous menu keeps serving.",
            registry=r,
        )
        self.menu_loaded = Gauge(
            "ivr_menu_loaded_timestamp_seconds",
            "When the menu being served was loaded (Unix time).",
            registry=r,
        )
        self.ami_connected = Gauge(
            "ivr_ami_connected", "1 while logged in to the Asterisk Manager Interface.", registry=r
        )
        self.ami_reconnects = Counter(
            "ivr_ami_reconnects", "AMI connections re-established after a drop.", registry=r
        )
        self.ami_login_failures = Counter(
            "ivr_ami_login_failures",
            "AMI logins that failed: refused (wrong user or secret, or not permitted from"
            " this address) or error (no answer, or the link closed before one).",
            ("reason",),
            registry=r,
        )
        self.ami_unobserved = Counter(
            "ivr_ami_unobserved_calls",
            "Queued calls whose queue outcome could not be observed (AMI was down);"
            " recorded as unknown.",
            registry=r,
        )
        self.queue_calls = Counter(
            "ivr_queue_calls",
            "Calls that left an operator queue, by queue and result.",
            ("queue", "result"),
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "ivr_queue_wait_seconds",
            "Seconds callers waited in an operator queue before an agent or leaving.",
            ("queue",),
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        Gauge(
            "ivr_build_info", "The service's version (value 1).", ("version",), registry=r
        ).labels(__version__).set(1)
        self._live = _LiveCollector()
        r.register(self._live)
        self._queue_names: frozenset[str] = frozenset()

    # --- events ------------------------------------------------------------------

    def call_ended(self, vertiente: str | None, area: str | None, outcome: str) -> None:
        self.calls.labels(vertiente or NONE, area or NONE, outcome).inc()

    def step_took(self, step: str, seconds: float) -> None:
        self.step_seconds.labels(step_kind(step)).observe(seconds)

    def command_turnaround(self, seconds: float) -> None:
        self.agi_command_seconds.observe(seconds)

    def menu_loaded_now(self, version: str, *, at: float | None = None) -> None:
        """The served menu changed: exactly one ``ivr_menu_info`` series stays."""
        self.menu_info.clear()
        self.menu_info.labels(version).set(1)
        self.menu_loaded.set(time.time() if at is None else at)

    def prepare(self, areas: Iterable[tuple[str, str]], queues: Iterable[str]) -> None:
        """Create the menu's series at zero, so that rates and ratios exist before the
        first call of each kind (``areas`` are (vertiente, area) keys)."""
        self.queues_known(queues)
        for vertiente, area in areas:
            for outcome in OUTCOMES:
                self.calls.labels(vertiente, area, outcome)
        for queue in sorted(self._queue_names):
            for result in QUEUE_RESULTS:
                self.queue_calls.labels(queue, result)
        for result in ("ok", "rejected"):
            self.menu_reloads.labels(result)
        for reason in ("refused", "error"):
            self.ami_login_failures.labels(reason)

    def menu_reloaded(self, *, ok: bool, changed: bool = True) -> None:
        """A reload attempt: counted when it changed the menu or was refused; the file's
        state is kept either way (a fixed file that equals the served menu clears it)."""
        self.menu_file_rejected.set(0 if ok else 1)
        if changed or not ok:
            self.menu_reloads.labels("ok" if ok else "rejected").inc()

    def queues_known(self, names: Iterable[str]) -> None:
        """The queue names the menu uses: any other name is reported as ``other``."""
        self._queue_names = frozenset(names)

    def queue_label(self, queue: str | None) -> str:
        if not queue:
            return NONE
        return queue if queue in self._queue_names else OTHER

    def queue_call_ended(self, queue: str | None, result: str, wait: float | None) -> None:
        label = self.queue_label(queue)
        self.queue_calls.labels(label, result if result in QUEUE_RESULTS else "unknown").inc()
        if wait is not None:
            self.queue_wait_seconds.labels(label).observe(wait)

    # --- state read at scrape time ------------------------------------------------

    def watch_server(self, server: ServerView) -> None:
        self._live.server = server

    def watch_recorder(self, recorder: RecorderView) -> None:
        self._live.recorder = recorder

    def watch_queues(self, queues: Callable[[], dict[str, QueueGauges]]) -> None:
        self._live.queues = queues


class _LiveCollector(Collector):
    """Reads the server's, the recorder's and the queues' state when scraped."""

    def __init__(self) -> None:
        self.server: ServerView | None = None
        self.recorder: RecorderView | None = None
        self.queues: Callable[[], dict[str, QueueGauges]] | None = None

    def describe(self) -> Iterable[Metric]:
        # Registering describes the collector: nothing to read yet, and no side effect.
        return ()

    def collect(self) -> Iterator[Metric]:
        if self.server is not None:
            yield from _server_metrics(self.server)
        if self.recorder is not None:
            yield from _recorder_metrics(self.recorder)
        if self.queues is not None:
            yield from _queue_metrics(self.queues())


def _server_metrics(server: ServerView) -> Iterator[Metric]:
    stats = server.stats
    yield GaugeMetricFamily(
        "ivr_calls_active", "Calls in the IVR now (FastAGI sessions).", value=server.active_calls
    )
    sessions = CounterMetricFamily(
        "ivr_agi_sessions", "FastAGI sessions by how they ended.", labels=("result",)
    )
    for result, count in (
        ("completed", stats.completed),
        ("ended_by_shutdown", stats.ended_by_shutdown),
        ("handler_error", stats.handler_errors),
        ("bad_session", stats.bad_sessions),
        ("env_timeout", stats.env_timeouts),
    ):
        sessions.add_metric((result,), count)
    yield sessions
    refused = CounterMetricFamily(
        "ivr_agi_refused",
        "FastAGI connections refused: peer not allowed, at capacity, shutting down, or"
        " closed while too many others were still to send their environment.",
        labels=("reason",),
    )
    for reason, count in (
        ("peer", stats.refused_peers),
        ("busy", stats.refused_busy),
        ("shutdown", stats.refused_shutdown),
        ("handshakes", stats.refused_handshakes),
    ):
        refused.add_metric((reason,), count)
    yield refused


def _recorder_metrics(recorder: RecorderView) -> Iterator[Metric]:
    stats = recorder.stats
    yield GaugeMetricFamily(
        "ivr_records_queue_depth",
        "Call records waiting in memory for the database writer.",
        value=recorder.queue_depth,
    )
    yield GaugeMetricFamily(
        "ivr_records_spool_bytes",
        "Bytes of call records spooled on disk, waiting for the database.",
        value=recorder.spool_bytes(),
    )
    yield GaugeMetricFamily(
        "ivr_records_database_up",
        "1 while the last write to PostgreSQL succeeded.",
        value=1.0 if stats.database_up else 0.0,
    )
    for name, help_text, count in (
        ("written", "Call records written to PostgreSQL.", stats.written),
        (
            "spooled",
            "Call records spooled to disk (database down, slow or queue full).",
            stats.spooled,
        ),
        ("replayed", "Spooled call records replayed into PostgreSQL.", stats.replayed),
        (
            "rejected",
            "Call records the database refused for their data (set aside).",
            stats.rejected,
        ),
        (
            "write_errors",
            "Failed writes to PostgreSQL (each batch counted once).",
            stats.write_errors,
        ),
        ("lost", "Call records that could be neither written nor spooled.", stats.lost),
    ):
        yield CounterMetricFamily(f"ivr_records_{name}", help_text, value=count)


def _queue_metrics(queues: dict[str, QueueGauges]) -> Iterator[Metric]:
    callers = GaugeMetricFamily(
        "ivr_queue_callers", "Callers waiting in the operator queue.", labels=("queue",)
    )
    longest = GaugeMetricFamily(
        "ivr_queue_longest_wait_seconds",
        "How long the queue's longest-waiting caller has waited.",
        labels=("queue",),
    )
    members = GaugeMetricFamily(
        "ivr_queue_members", "Queue members by state.", labels=("queue", "state")
    )
    for name, state in sorted(queues.items()):
        callers.add_metric((name,), state.callers)
        longest.add_metric((name,), state.longest_wait_seconds)
        for member_state in MEMBER_STATES:
            members.add_metric((name, member_state), getattr(state, member_state))
    yield callers
    yield longest
    yield members
