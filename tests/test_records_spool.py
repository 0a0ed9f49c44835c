"""The on-disk spool (ivr.records.spool): append, read back, torn lines, one owner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from records_data import synthetic_stream

from ivr.records.spool import REJECTED, Spool, SpoolInUseError


def test_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    spool.open()
    stream = synthetic_stream(40)
    for record in stream:
        spool.append(record)
    spool.rotate()
    segments = spool.closed_segments()
    assert len(segments) > 1, "segment_bytes should have split the spool"
    read_back = [record for segment in segments for record in spool.read(segment)]
    assert read_back == stream
    spool.close()


def test_segment_numbers_continue_after_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    first.append(synthetic_stream(1)[0])
    first.close()
    second = Spool(tmp_path)
    second.open()
    second.append(synthetic_stream(1)[0])
    second.rotate()
    assert [s.index for s in second.segments()] == [1, 2]
    second.close()


def test_a_torn_last_line_is_set_aside_not_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    stream = synthetic_stream(2)
    for record in stream:
        spool.append(record)
    spool.rotate()
    (segment,) = spool.closed_segments()
    with segment.path.open("ab") as handle:
        handle.write(b'{"t":"event","call_id":"0000')  # the process died mid-write
    with segment.path.open("r+b") as handle:  # and an earlier line was damaged on disk
        content = handle.read().replace(b'"t":"event"', b'"t":"evnt"', 1)
        handle.seek(0)
        handle.write(content)
        handle.truncate()
    read_back = list(spool.read(segment))
    assert len(read_back) == len(stream) - 1
    rejected = [json.loads(line) for line in (tmp_path / REJECTED).read_text().splitlines()]
    assert [entry["reason"] for entry in rejected] == [
        "unknown record type",
        "incomplete line (torn by a crash mid-write)",
    ]
    assert rejected[1]["record"] == '{"t":"event","call_id":"0000'
    assert rejected[0]["where"].startswith(segment.path.name + ":")
    assert spool.rejected == 2
    spool.close()


def test_a_second_process_cannot_own_the_same_spool(tmp_path: Path) -> None:
    owner = Spool(tmp_path)
    owner.open()
    with pytest.raises(SpoolInUseError, match="give each instance its own IVR_DATA_DIR"):
        Spool(tmp_path).open()
    owner.close()
    again = Spool(tmp_path)
    again.open()  # released on close
    again.close()


def test_spool_files_are_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append(synthetic_stream(1)[0])
    spool.rotate()
    (segment,) = spool.segments()
    assert segment.path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    assert spool.size_bytes() == segment.path.stat().st_size > 0
    spool.close()
