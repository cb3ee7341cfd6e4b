#!/usr/bin/env python3
"""A userspace TCP delay proxy: every byte is forwarded DELAY_MS/2 later in each direction, so a
connection through it sees DELAY_MS of round-trip time, without limiting throughput (this machine's
kernel has no `tc netem`). Order is kept per direction; each chunk waits only for its own time.

    python3 tests/bench/delay_proxy.py LISTEN_PORT UPSTREAM_HOST:PORT DELAY_MS
"""
import asyncio
import sys
import time


async def pipe(reader, writer, one_way):
    queue = asyncio.Queue()

    async def send():
        while True:
            at, data = await queue.get()
            if data is None:
                break
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + one_way, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    await sender


async def main(port, upstream, delay_ms):
    host, up_port = upstream.rsplit(":", 1)
    one_way = delay_ms / 2000.0

    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_connection(host, int(up_port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, up_w, one_way), pipe(up_r, client_w, one_way))
        for w in (client_w, up_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
