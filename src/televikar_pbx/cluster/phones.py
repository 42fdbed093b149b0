"""Agents' phones over several nodes: reachable when reachable from any node.

Each node's AMI (ami/presence.py) reports which PJSIP endpoints it can reach. With the
SIP front (Kamailio) every node reaches every registered phone, and qualifies it
through Kamailio (an unregistered phone's OPTIONS gets no answer there: unreachable).
A node whose AMI connection is lost says nothing any more: what it said is forgotten
until it logs in again and reports everything anew, so a dead node neither keeps a
phone reachable nor makes it unreachable.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

log = structlog.get_logger("televikar_pbx.cluster")


class PhoneReachability:
    """Combines the nodes' reports into one ``on_change(endpoint, reachable)``."""

    def __init__(self, on_change: Callable[[str, bool], None]) -> None:
        self._on_change = on_change
        self._by_node: dict[str, dict[str, bool]] = {}
        self._reported: dict[str, bool] = {}

    def reporter(self, node: str) -> Callable[[str, bool], None]:
        """The ``on_change`` callback for ``node``'s AMI presence."""

        def report(endpoint: str, reachable: bool) -> None:
            self._by_node.setdefault(node, {})[endpoint] = reachable
            self._report(endpoint)

        return report

    def lost(self, node: str) -> Callable[[], None]:
        """The ``on_lost`` callback for ``node``'s AMI presence."""

        def forget() -> None:
            endpoints = self._by_node.pop(node, {})
            log.info("cluster.phones_unknown", node=node, endpoints=len(endpoints))
            for endpoint in endpoints:
                self._report(endpoint)

        return forget

    def reachable(self, endpoint: str) -> bool | None:
        return self._reported.get(endpoint)

    def _report(self, endpoint: str) -> None:
        said = [seen[endpoint] for seen in self._by_node.values() if endpoint in seen]
        if not said and endpoint not in self._reported:
            return
        ok = any(said)
        if self._reported.get(endpoint) != ok:
            self._reported[endpoint] = ok
            self._on_change(endpoint, ok)
