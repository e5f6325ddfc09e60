"""A TCP proxy run as its own process: kill it to cut every connection, start it to heal.

Tests put it between one service and the broker to take the broker away
from that service alone, without touching the machine's shared RabbitMQ.

    python -m tests.support.tcp_proxy LISTEN_PORT TARGET_HOST TARGET_PORT
"""

import asyncio
import subprocess
import sys

from tests.support.waiting import wait_for


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_port, target_host, target_port):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


class TcpProxy:
    """Controls a proxy process from a test."""

    def __init__(self, listen_port, target_host, target_port):
        self.args = [str(listen_port), target_host, str(target_port)]
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcp_proxy", *self.args],
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: self.process.stdout.readline().strip() == "listening", message="the proxy")

    def cut(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self.process = None


if __name__ == "__main__":
    listen, host, port = sys.argv[1:4]
    asyncio.run(serve(int(listen), host, int(port)))
