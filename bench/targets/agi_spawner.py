"""Asterisk's side of ``AGI(script)``: a process per call, talking over pipes.

The load generator speaks FastAGI to every target, so this stand-in for Asterisk's
``res_agi`` accepts the FastAGI connection and does what Asterisk does for a local AGI
script: fork and execute the script (pinned to the target's CPU), write the
environment to its standard input, relay its commands to the generator and the
generator's replies back, and reap it when it exits. Its own work (the relay) is
Asterisk's cost, so it runs on the generator's CPU and is not counted; the scripts'
CPU is (the kernel accounts it to this process's waited-for children).

Run: python bench/targets/agi_spawner.py --port 4573 --script bench/targets/pyst2_agi.py --cpu 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from functools import partial


async def relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while line := await source.readline():
        sink.write(line)
    with contextlib.suppress(OSError):
        sink.close()


async def handle(
    script: str, cpu: int | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    env = b""
    while (line := await reader.readline()) not in (b"\n", b""):
        env += line

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=pin,  # fork then exec, as res_agi does
    )
    if child.stdin is None or child.stdout is None:
        raise RuntimeError("no pipes to the AGI script")
    child.stdin.write(env + b"\n")
    to_script = asyncio.create_task(relay(reader, child.stdin))
    await relay(child.stdout, writer)  # the script's commands, until it exits
    await child.wait()
    to_script.cancel()
    writer.close()


async def main(port: int, script: str, cpu: int | None) -> None:
    server = await asyncio.start_server(
        partial(handle, script, cpu), "127.0.0.1", port, backlog=4096
    )
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--cpu", type=int, default=None)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.script, arguments.cpu))
