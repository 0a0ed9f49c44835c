"""``bench/compare`` still runs end to end: four targets, every call checked, a table.

A tiny run (1 and 5 calls in flight, a few calls each, short prompts), so that a change
to the engine's command lines or to a target cannot silently break the benchmark. The
figures themselves are the benchmark's business, not this test's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_compare_runs_every_target_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    argv = [sys.executable, str(ROOT / "bench" / "compare.py"), "--levels", "1", "5"]
    argv += ["--capacity", "10", "20", "--pyst2", "2", "5", "--play", "0.05"]
    done = subprocess.run(
        [*argv, "--out", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = out.read_text()
    rows = [line for line in table.splitlines() if re.match(r"\| [0-9,]+ \| ", line)]
    targets = {row.split("|")[2].strip() for row in rows}
    assert len(rows) == 8
    assert targets == {
        "raw asyncio (floor)",
        "panoramisk FastAGI",
        "pyst2 AGI(), process per call",
        "this engine, all on",
    }
    # Every call placed on the engine is a row in its PostgreSQL.
    records = re.search(r"placed ([0-9,]+) calls and PostgreSQL holds ([0-9,]+) call rows", table)
    assert records is not None
    assert records[1] == records[2]
    assert int(records[1].replace(",", "")) > 0
