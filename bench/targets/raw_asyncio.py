"""The floor: a minimal FastAGI handler on raw asyncio streams, no framework.

It reads the environment, then sends the scripted call's commands one by one and
reads one reply line each: no timeouts, no 520 usage blocks, no HANGUP lines, no
logging, no records. That is the least a Python FastAGI server can do for this call.

Run: python bench/targets/raw_asyncio.py --port 4573
"""

from __future__ import annotations

import argparse
import asyncio

from call_script import scripted_call


def reply_data(line: bytes) -> str:
    """The ``(data)`` of ``200 result=N (data)``, or ``""``."""
    start = line.find(b"(")
    return line[start + 1 : line.rfind(b")")].decode() if start >= 0 else ""


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    env: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\n", b""):
        name, _, value = line.decode().rstrip("\n").partition(": ")
        env[name] = value
    script = scripted_call(env)
    command = next(script)
    try:
        while True:
            writer.write(command.encode() + b"\n")
            reply = await reader.readline()
            if not reply.startswith(b"200"):
                break
            command = script.send(reply_data(reply))
    except StopIteration:
        pass
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
