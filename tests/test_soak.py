"""The soak (``bench/soak.py``) for two minutes: the real service, the real PostgreSQL.

The soak runs as its own process, as ``bench/soak.py --minutes 2`` would from a shell,
and writes its summary as JSON: this test asserts on that. It takes about 2 min 10 s.
The 30-minute figures (``bench/README.md``) are the evidence about memory; here the
memory check only catches a leak gross enough to show in 90 seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "bench" / "soak.py"

MINUTES = 2
RATE = 20  # calls per second, as the 30-minute run
RELOAD_EVERY = 60  # seconds: reloads at 30 s and 90 s
# Growth of the service's RSS from the end of the 30 s warm-up to the end of the
# traffic (all calls over). A quiet run grows by 1-2 MiB (allocator arenas settling).
# 16 MiB leaves room for a busy 2-core CI machine (a recorder backlog, arena
# fragmentation) and is still exceeded if each of the ~1,800 calls after the warm-up
# kept ~9 KiB: about what one call's record, its trail and its AGI session weigh.
MAX_GROWTH_KIB = 16 * 1024
# Not a timing assertion: only so that a hung run cannot hang CI.
SAFETY_TIMEOUT = 600


def run_soak(summary: Path) -> tuple[int, str]:
    """Runs the soak; (exit status, its output). Stopped gracefully if it overruns."""
    command = [
        sys.executable, str(SOAK), "--minutes", str(MINUTES), "--rate", str(RATE),
        "--reload-every", str(RELOAD_EVERY), "--sample-every", "2",
        "--summary-json", str(summary),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=SAFETY_TIMEOUT)
    finally:
        if proc.poll() is None:
            # SIGTERM first: the soak then stops the service and its PostgreSQL.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    return proc.returncode, output


def test_two_minute_soak(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    status, output = run_soak(summary_file)
    assert summary_file.is_file(), output
    summary: dict[str, Any] = json.loads(summary_file.read_text(encoding="utf-8"))

    # Every call did what its caller's script expects, nothing was logged as an error,
    # no connection was refused, the service stopped cleanly.
    assert summary["errors"] == 0, output
    assert summary["service_exit"] == 0, output
    # Mixed traffic really ran: every kind, with hang-ups at some step.
    assert set(summary["calls_by_kind"]) == {"routed", "closed", "invalid", "silence", "hangup"}
    assert summary["calls"] == MINUTES * 60 * RATE
    assert summary["hung_up"] == summary["calls_by_kind"]["hangup"]
    # One row per call placed, found by its call id, holding the expected outcome.
    assert summary["records"] == summary["calls"], output
    assert summary["rows_total"] == summary["calls"], output
    assert summary["rows_wrong"] == 0, output
    # Every reload took: the new version on /metrics and in the log.
    assert summary["reloads"] == 2
    assert summary["reloads_took"] == 2, output
    assert summary["menu_versions_seen_in_log"] == 2
    # Memory after the warm-up stays within a generous bound.
    growth = summary["service_rss_growth"]
    assert growth is not None, output
    assert growth["last_minus_first_kib"] <= MAX_GROWTH_KIB, output
    assert status == 0, output
