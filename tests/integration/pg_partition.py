"""A TCP relay to PostgreSQL that a test can cut off without closing anything.

A real network partition closes no socket: packets just stop arriving, and both ends
find out only when something times out. ``blackhole()`` does that here: connections
through the relay stay open, bytes already in flight wait in the relay (as unacknowledged
segments wait for a retransmission), new connections are accepted and wait too. After
``heal()`` everything that waited flows on, as it would when the network comes back.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class PartitionRelay:
    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._passing = threading.Event()
        self._passing.set()
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="pg-relay").start()

    def blackhole(self) -> None:
        self._passing.clear()

    def heal(self) -> None:
        self._passing.set()

    def close(self) -> None:
        self._closed = True
        self._passing.set()
        self._server.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        # Tracked at once: a connection that waits out a black hole until close() is
        # closed by it, never left open (no upstream is made for it after close()).
        with self._lock:
            if self._closed:
                client.close()
                return
            self._sockets.append(client)
        self._passing.wait()
        if self._closed:
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            if self._closed:
                upstream.close()
                return
            self._sockets.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self._passing.wait()
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
