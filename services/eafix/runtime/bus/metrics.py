"""Prometheus metrics of the bus, registered in the registry the caller passes (the app's own).

`pending` and `lag` are properties of a consumer group, not of one consumer: every replica
samples the whole group (summed over the topic's partitions) and reports the same value, so
dashboards and alerts aggregate them with max(), not sum(). `owned_partitions` is the replica's
own share of the topic's partitions (sum() over the replicas: the partition count, once every
partition has an owner).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

LABELS = ["topic", "group"]


class BusMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.published = Counter("eafix_bus_published", "Messages published.", ["topic"], registry=r)
        self.handled = Counter("eafix_bus_handled", "Messages handled and acknowledged.", LABELS, registry=r)
        self.failed = Counter("eafix_bus_handler_failures", "Handler calls that raised (each is retried "
                              "until the delivery cap).", LABELS, registry=r)
        self.dead_lettered = Counter("eafix_bus_dead_lettered", "Messages moved to <topic>.dlq.", LABELS,
                                     registry=r)
        self.reclaimed = Counter("eafix_bus_reclaimed", "Pending entries claimed from idle or departed "
                                 "consumers.", LABELS, registry=r)
        self.group_recreated = Counter("eafix_bus_group_recreated", "Consumer groups re-created after "
                                       "Redis lost them.", LABELS, registry=r)
        self.connection_errors = Counter("eafix_bus_connection_errors", "Redis connection errors of the "
                                         "consumer loop (each followed by a backoff).", LABELS, registry=r)
        self.pending = Gauge("eafix_bus_pending", "Entries delivered to the group and not yet acknowledged.",
                             LABELS, registry=r)
        self.lag = Gauge("eafix_bus_lag", "Entries of the topic not yet delivered to the group "
                         "(XINFO GROUPS lag; counted when Redis answers nil, after a restart).", LABELS, registry=r)
        self.owned_partitions = Gauge("eafix_bus_owned_partitions", "Partitions (streams) of the topic this "
                                      "replica reads for the group: its leases (0 while standing by).", LABELS,
                                      registry=r)
