"""FastAGI: the sans-IO protocol, command builders, the asyncio session and server."""
