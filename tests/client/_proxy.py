"""A small TCP proxy between the SDK and the gateway, to break connections on purpose.

TLS runs end to end through it (it only copies bytes). ``drop_server_chunk`` is asked about
every chunk the gateway sends back; when it answers true, the connection is cut instead of
forwarding that chunk -- e.g. "once the write is committed", so the client never gets the
answer of a call the server completed. ``drop_all`` cuts every open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["TcpProxy"]


class TcpProxy:
    def __init__(self) -> None:
        self.upstream: tuple[str, int] | None = None
        self.drop_server_chunk: Callable[[bytes], bool] | None = None
        self.connections = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, target: str) -> str:
        """Listen on a free local port, forwarding to ``target`` (``host:port``)."""
        host, _, port = target.rpartition(":")
        self.upstream = (host, int(port))
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        sock = self._server.sockets[0].getsockname()
        return f"127.0.0.1:{sock[1]}"

    def retarget(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.upstream = (host, int(port))

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: asyncio.StreamWriter,
        *,
        from_server: bool,
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                hook = self.drop_server_chunk
                if from_server and hook is not None and hook(chunk):
                    self.dropped += 1
                    self._abort(writer)
                    self._abort(peer)
                    return
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._abort(writer)
            self._abort(peer)

    @staticmethod
    def _abort(writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        if not transport.is_closing():
            transport.abort()  # RST, not a clean close: a broken connection

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        assert self.upstream is not None
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._abort(client_w)
            return
        self._writers |= {client_w, server_w}
        up = asyncio.create_task(self._pipe(client_r, server_w, client_w, from_server=False))
        down = asyncio.create_task(self._pipe(server_r, client_w, server_w, from_server=True))
        self._tasks |= {up, down}
        await asyncio.gather(up, down, return_exceptions=True)
        self._tasks -= {up, down}
        self._writers -= {client_w, server_w}

    def drop_all(self) -> None:
        """Cut every open connection (as a network failure would)."""
        for writer in list(self._writers):
            self._abort(writer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
