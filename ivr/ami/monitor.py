"""The queue monitor: the AMI link, the queue tracker, the records and the metrics.

It is the glue and holds no logic of its own: events go to
:class:`~ivr.ami.outcomes.QueueTracker`, whose observations become call records (through
the same write-behind recorder as the engine's) and metrics; each QueueStatus snapshot
becomes the live queue gauges and, after a reconnect, resynchronises the tracker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from ivr.ami.client import AmiClient, AmiConfig
from ivr.ami.outcomes import AmiEvent, Observation, QueueTracker
from ivr.ami.queues import QueueSnapshot
from ivr.metrics import Metrics, QueueGauges
from ivr.records.calllog import Sink

__all__ = ["EXPIRE_EVERY", "QueueMonitor"]

EXPIRE_EVERY = 1000  # routed calls between two expiries while AMI is down


class QueueMonitor:
    def __init__(
        self,
        config: AmiConfig,
        *,
        sink: Sink,
        metrics: Metrics,
        queues: Callable[[], Iterable[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.tracker = QueueTracker(queues, clock)
        self.client = AmiClient(
            config,
            on_event=self._event,
            on_link=self._link,
            on_snapshot=self._snapshot,
            queues=queues,
            on_login_refused=metrics.ami_login_failures.labels("refused").inc,
            on_login_error=metrics.ami_login_failures.labels("error").inc,
            on_reconnect=metrics.ami_reconnects.inc,
        )
        self._gauges: dict[str, QueueGauges] = {}
        self._resync = False
        self._routed = 0

    @property
    def connected(self) -> bool:
        return self.client.connected

    def gauges(self) -> dict[str, QueueGauges]:
        """The last QueueStatus per queue; nothing while AMI is down (stale is worse)."""
        return self._gauges if self.client.connected else {}

    def routed(self, uniqueid: str, call_id: UUID, queue: str) -> None:
        self.tracker.routed(uniqueid, call_id, queue)
        self._routed += 1
        if self._routed % EXPIRE_EVERY == 0 and not self.client.connected:
            # Snapshots expire followers while AMI is up; while it is down (a wrong
            # secret for hours), routed calls would pile up until the tracker's cap.
            for observation in self.tracker.expire():
                self._apply(observation)

    async def run(self, stop: asyncio.Event) -> None:
        await self.client.run(stop)

    def _apply(self, observation: Observation) -> None:
        for record in observation.records:
            self.sink.submit(record)
        if observation.result is not None:
            self.metrics.queue_call_ended(observation.queue, observation.result, observation.wait)
        if observation.unobserved:
            self.metrics.ami_unobserved.inc()

    def _event(self, event: AmiEvent) -> None:
        observation = self.tracker.on_event(event)
        if observation is not None:
            self._apply(observation)

    def _link(self, up: bool) -> None:
        self.metrics.ami_connected.set(1 if up else 0)
        if up:
            self.tracker.link_up()
            self._resync = True
        else:
            self.tracker.link_down()
            self._gauges = {}

    def _snapshot(self, snapshot: QueueSnapshot) -> None:
        self._gauges = snapshot.queues
        if self._resync:
            self._resync = False
            for observation in self.tracker.resync(snapshot.waiting):
                self._apply(observation)
        for observation in self.tracker.expire():
            self._apply(observation)
