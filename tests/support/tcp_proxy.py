"""A TCP proxy run as its own process: kill it to cut every connection, start it to heal.

Tests put it between one service and the broker to take the broker away
from that service alone, without touching the machine's shared RabbitMQ.

    python -m tests.support.tcp_proxy LISTEN_PORT TARGET_HOST TARGET_PORT [HOLD_EXCHANGE]

With HOLD_EXCHANGE (AMQP only), the proxy passes every frame through until a
client sends a `basic.publish` to that exchange: from that frame on it holds
what that connection sends, never forwarding it, and prints `held EXCHANGE`.
The publisher waits for a confirm that cannot come, as when the broker is
slow to answer; killing the publisher then kills it between its commit and
its publish.
"""

import asyncio
import select
import subprocess
import sys
import time

AMQP_HEADER_BYTES = 8  # "AMQP" 0 0 9 1
FRAME_HEADER_BYTES = 7  # type (1), channel (2), payload size (4)
FRAME_END_BYTES = 1
METHOD_FRAME = 1
BASIC_PUBLISH = b"\x00\x3c\x00\x28"  # class 60 (basic), method 40 (publish)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def published_to(frame):
    """The exchange a `basic.publish` method frame publishes to, else None."""
    payload = frame[FRAME_HEADER_BYTES:-FRAME_END_BYTES]
    if frame[0] != METHOD_FRAME or payload[:4] != BASIC_PUBLISH:
        return None
    # After the method ids: reserved short, then the exchange as a short string.
    length = payload[6]
    return payload[7 : 7 + length].decode()


async def pipe_until_publish(reader, writer, exchange):
    """Forward whole AMQP frames until one publishes to `exchange`; hold it and all after."""
    buffer = b""
    forwarded_header = False
    try:
        while data := await reader.read(65536):
            buffer += data
            out = b""
            if not forwarded_header:
                if len(buffer) < AMQP_HEADER_BYTES:
                    continue
                out, buffer = buffer[:AMQP_HEADER_BYTES], buffer[AMQP_HEADER_BYTES:]
                forwarded_header = True
            while len(buffer) >= FRAME_HEADER_BYTES:
                size = int.from_bytes(buffer[3:7], "big")
                end = FRAME_HEADER_BYTES + size + FRAME_END_BYTES
                if len(buffer) < end:
                    break
                frame, buffer = buffer[:end], buffer[end:]
                if published_to(frame) == exchange:
                    writer.write(out)
                    print(f"held {exchange}", flush=True)
                    # Read on and drop what comes, so the client sees a live, silent peer.
                    while await reader.read(65536):
                        pass
                    return
                out += frame
            writer.write(out)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_port, target_host, target_port, hold_exchange=None):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        upstream = (
            pipe_until_publish(client_reader, server_writer, hold_exchange)
            if hold_exchange
            else pipe(client_reader, server_writer)
        )
        await asyncio.gather(upstream, pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


class TcpProxy:
    """Controls a proxy process from a test."""

    def __init__(self, listen_port, target_host, target_port, hold_exchange=None):
        self.args = [str(listen_port), target_host, str(target_port)]
        if hold_exchange:
            self.args.append(hold_exchange)
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcp_proxy", *self.args],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("listening", timeout=15)

    def expect(self, line, timeout):
        """Wait for the proxy to print `line`; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for the proxy: {line}")
            ready, _, _ = select.select([stdout], [], [], left)
            if not ready:
                continue
            said = stdout.readline()
            if not said:
                raise AssertionError(f"the proxy exited before it said: {line}")
            if said.strip() == line:
                return

    def cut(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self.process = None


if __name__ == "__main__":
    listen, host, port, *hold = sys.argv[1:5]
    asyncio.run(serve(int(listen), host, int(port), *hold))
