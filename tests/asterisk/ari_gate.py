"""A TCP relay in front of Asterisk's HTTP port (ARI) that a test can close.

``ss -K`` kills the service's sockets to ARI, but the service reconnects within half a
second and is connected again for a few tens of milliseconds before the next kill: an
event can slip through one of those windows (a fault test once saw the caller's
ChannelDestroyed arrive 7 ms after such a reconnect). Through the gate, a cut is total:
every connection through it is dropped, and new ones are closed as soon as they are
accepted, until the cut ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class AriGate:
    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 8088)) -> None:
        self._target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="ari-gate").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self, seconds: float) -> int:
        """Drop every connection through the gate and refuse new ones for ``seconds``;
        returns how many connections were dropped."""
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        dropped = 0
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            dropped += 1
        time.sleep(seconds)
        self._open.set()
        return dropped

    def close(self) -> None:
        self._closed = True
        self._server.close()
        self.cut(0)
