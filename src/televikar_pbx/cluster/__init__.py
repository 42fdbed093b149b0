"""Several ``serve`` processes, one leader: a lease in PostgreSQL; several Asterisk nodes
under one desk: ``nodes.py`` and ``phones.py`` (issue 16).

The pieces: ``config.py`` (the timings, from the settings; SQLite refused), ``term.py``
(how long a leader may believe it leads, by its own monotonic clock; pure),
``elector.py`` (the task that takes and keeps the lease), and, one layer down so that
the call store can use them, ``db/leases_repo.py`` (the SQL: acquire, renew, release,
and the fence every leader's write starts with). docs/operations.md, "Leader and
standby", has the timings and the reasons.

How ``serve`` would use it (app.py does the wiring)::

    config = cluster_config(settings)          # None in single mode; ConfigError on SQLite
    if config is not None:
        # Its own small engine: the lease must not queue behind the call store's pool.
        lease_engine = make_engine(settings.sqlalchemy_url)
        elector = LeaderElector(
            make_sessionmaker(lease_engine),
            config,
            on_lead=lambda token: desk.start_leading(token),   # adopt calls, connect ARI
            on_lose=lambda reason: desk.stop_acting(reason),   # at once; then exit or wait
        )
        elector.start()
        ...
        await elector.stop()                   # clean shutdown: stop acting, then release

    # every write of the leader, e.g. in the call store:
    async with fenced_transaction(sessionmaker, elector.token) as session:
        ...                                    # raises Fenced: rolled back, stop acting

``on_lead``/``on_lose`` are plain functions called in the elector's task: they must not
block. ``elector.is_leading()`` turns False when the term ends, even before ``on_lose``
has run, so a command about to go to Asterisk can ask it at the last moment.
"""

from televikar_pbx.cluster.config import ClusterConfig, cluster_config, default_holder
from televikar_pbx.cluster.elector import LeaderElector
from televikar_pbx.cluster.term import LeaderTerm
from televikar_pbx.db.leases_repo import (
    Fenced,
    FencedSessions,
    FenceToken,
    LeaseUnsupported,
    check_fence,
    fenced_transaction,
)

__all__ = [
    "ClusterConfig",
    "FenceToken",
    "Fenced",
    "FencedSessions",
    "LeaderElector",
    "LeaderTerm",
    "LeaseUnsupported",
    "check_fence",
    "cluster_config",
    "default_holder",
    "fenced_transaction",
]
