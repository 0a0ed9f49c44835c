"""The library alternative: panoramisk's FastAGI ``Application`` running the same call.

panoramisk routes on the exact ``agi_network_script``, query string included, so the
route is registered under the script the benchmark's calls request.

Run: python bench/targets/panoramisk_fastagi.py --port 4573 --script 'citizen-line?at=...'
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from call_script import scripted_call
from panoramisk.fast_agi import Application


async def citizen_line(request: Any) -> None:
    script = scripted_call(request.headers)
    command = next(script)
    try:
        while True:
            result = await request.send_command(command)
            if result.get("status_code") != 200:
                break
            command = script.send(result["result"][1])
    except StopIteration:
        pass


async def main(port: int, route: str) -> None:
    app = Application()
    app.add_route(route, citizen_line)
    server = await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=4096)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.script))
