"""What a service process runs besides the health endpoints: its routes, start/stop steps, background tasks.

A pipeline service package has a `service` module (`eafix.<module>.service`) with

    SETTINGS = MySettings                  # a Settings subclass with the service's SERVICE_* values
    def build(settings) -> ServiceParts    # wiring only: connects nowhere (it may read and validate a
                                           # configuration file, so a bad one fails before serving)

`build` creates the engines, stages and routers and *describes* the I/O: steps to run at start
(open the pool, restore state from the repository) and at stop, and background tasks (the bus
consumers, timers). `create_app(spec, settings, parts)` includes the routers and runs the steps in
its lifespan, so `eafix openapi` builds the same app, with the business routes, without connecting
anywhere (settings without URLs get in-memory ports). A service without a `service` module serves
only the health endpoints.

Start: the steps in order (a failing step undoes the steps started before it, in reverse, and
fails start-up: the process exits), then the background tasks. Stop (SIGTERM, after uvicorn has
finished the in-flight requests): the tasks in reverse order (timers finish their current run; the
bus stops reading, lets the in-flight handler finish and acknowledges it, releases its partition
leases and closes its Redis client), then the steps' stop halves in reverse (the pool last).

Helpers for the pipeline services:
- `PipelineSettings`: `SERVICE_CONSUMER_NAME` (default: $HOSTNAME, the pod name) and `SERVICE_BUS`
  (JSON: consumer timings); `json_model()` turns a JSON setting into a typed value with one-line
  errors that name the key (`SERVICE_RISK: max_open_positions: ...`).
- `pipeline_bus()`: the Redis Streams bus of a service (consumer = pod name; ordered subscriptions
  of a group co-located, see eafix.runtime.bus.redis_streams), or an in-memory bus without Redis.
- `StageGuard`: one lock around a stage's handlers, timers and state reloads; a failed handler
  marks the state stale and the next message reloads it from storage first.
- `ActiveReplica`: the bus's `on_acquired` hook (reload state before a partition taken over from
  another replica is read) and whether this replica is the one consuming (timers and HTTP writes of
  a stateful stage run only there).
- `Subscriptions`: what a stage's `subscribe()` is given, to wrap its handlers and to route
  control topics to a `TopicFollower` (every replica reads every message, no consumer group).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from types import ModuleType
from typing import Any, Protocol

import psycopg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from eafix.runtime.bus import Backoff, Bus, BusConfig, BusMetrics, InMemoryBus, RedisStreamsBus, stream_names
from eafix.runtime.bus.base import Handler, invoke, symbol_partitions
from eafix.runtime.bus.redis_streams import CONNECTION_ERRORS, FIELD, UNAVAILABLE
from eafix.runtime.redis_client import redis_client
from eafix.runtime.settings import Settings, SettingsError, redis_url
from eafix.runtime.store import Database
from eafix.services import ServiceSpec

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
TASK_STOP_TIMEOUT = 10.0  # seconds a task may take to end after its stop() returned, then it is cancelled
BUS_STOP_TIMEOUT = 15.0  # the in-flight handler's time to finish (the chart's grace period is 30 s)
# A handler that raises one of these found Redis or PostgreSQL down (psycopg's OperationalError: no
# connection, the pool's timeout, the server shutting down, a deadlock); the bus retries it without
# counting a delivery, so an outage of any length dead-letters nothing (eafix.runtime.bus.redis_streams).
BACKEND_UNAVAILABLE: tuple[type[BaseException], ...] = (*UNAVAILABLE, psycopg.OperationalError)


# --- parts of a service ---------------------------------------------------------------------------


@dataclass
class BackgroundTask:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Hook | None = None  # asks `run` to return; None: the task is cancelled


@dataclass
class _Step:
    start: Hook | None
    stop: Hook | None


class _Collector(Protocol):
    def collect(self) -> Iterable[Any]: ...


@dataclass
class ServiceParts:
    """Routers, start/stop steps and background tasks of one service (see the module docstring).

    `collectors` are registered in the app's metrics registry (e.g. the bus metrics' registry);
    `middleware` are ASGI middleware (class, keyword arguments) added inside the app's observing
    middleware, first listed outermost (gui-gateway's request guards);
    `state` keeps named objects of the wiring (engines, stages, the bus) for tests and operators.
    """

    routers: list[APIRouter] = field(default_factory=list)
    middleware: list[tuple[type, dict[str, Any]]] = field(default_factory=list)
    steps: list[_Step] = field(default_factory=list)
    tasks: list[BackgroundTask] = field(default_factory=list)
    collectors: list[_Collector] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    _started_steps: list[_Step] = field(default_factory=list, repr=False)
    _running: list[tuple[BackgroundTask, asyncio.Task]] = field(default_factory=list, repr=False)

    def add_step(self, start: Hook | None = None, stop: Hook | None = None) -> None:
        """`start` runs at start-up (in order of addition); `stop` at shutdown (in reverse), and also
        when a later step fails to start."""
        self.steps.append(_Step(start, stop))

    def add_task(self, name: str, run: Callable[[], Awaitable[None]], stop: Hook | None = None) -> None:
        """A background coroutine started after the steps; at shutdown `stop()` (or cancellation) ends it."""
        self.tasks.append(BackgroundTask(name, run, stop))

    def every(self, name: str, seconds: float, call: Hook) -> None:
        """Run `call` every `seconds` (after each run, so runs never overlap) until shutdown; a run in
        progress at shutdown finishes. Failures are logged (once per streak) and the timer goes on."""
        stopping = asyncio.Event()

        async def loop() -> None:
            failing = False
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(stopping.wait(), seconds)
                    return
                except TimeoutError:
                    pass
                try:
                    await call()
                except Exception as exc:
                    if not failing:
                        log.warning("timer failed; retrying every %ss", seconds, exc_info=True,
                                    extra={"timer": name, "error": f"{type(exc).__name__}: {exc}"})
                    failing = True
                else:
                    if failing:
                        log.info("timer recovered", extra={"timer": name})
                    failing = False

        async def stop() -> None:
            stopping.set()

        self.add_task(name, loop, stop)

    async def start(self) -> None:
        for step in self.steps:
            try:
                if step.start is not None:
                    await step.start()
            except BaseException:
                await self._undo_steps()
                raise
            self._started_steps.append(step)
        for task in self.tasks:
            self._running.append((task, asyncio.create_task(self._supervised(task), name=f"service:{task.name}")))
        # Let every task reach its first await: a stop that came before a task started (e.g. the bus's
        # stop() before its run() set up its stop event) would not reach it, and it would run on.
        await asyncio.sleep(0)

    @staticmethod
    async def _supervised(task: BackgroundTask) -> None:
        try:
            await task.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed", extra={"task": task.name})

    async def stop(self) -> None:
        while self._running:
            task, running = self._running.pop()
            try:
                if task.stop is not None:
                    await task.stop()
                    await asyncio.wait_for(asyncio.shield(running), TASK_STOP_TIMEOUT)
            except TimeoutError:
                log.error("background task did not stop in time; cancelling it", extra={"task": task.name})
            except Exception:
                log.exception("stopping a background task failed", extra={"task": task.name})
            if not running.done():
                running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await self._undo_steps()

    async def _undo_steps(self) -> None:
        while self._started_steps:
            step = self._started_steps.pop()
            if step.stop is None:
                continue
            try:
                await step.stop()
            except Exception:
                log.exception("a stop step failed")


# --- loading a service's parts --------------------------------------------------------------------


def service_module(spec: ServiceSpec) -> ModuleType | None:
    """`eafix.<module>.service`, or None for a service that has none (health endpoints only)."""
    name = f"eafix.{spec.module}.service"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, f"eafix.{spec.module}"):
            return None
        raise


def settings_class(spec: ServiceSpec) -> type[Settings]:
    module = service_module(spec)
    return getattr(module, "SETTINGS", Settings) if module is not None else Settings


def build_parts(spec: ServiceSpec, settings: Settings) -> ServiceParts | None:
    """The service's parts from its `build(settings)`; None without a service module. No I/O."""
    module = service_module(spec)
    return module.build(settings) if module is not None else None


# --- settings ---------------------------------------------------------------------------------------


def describe_errors(exc: ValidationError) -> str:
    """`key.sub: problem (got ...); ...` on one line."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and not isinstance(err["input"], Mapping | list):
            shown = repr(err["input"])
            msg += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
        parts.append(f"{where}: {msg}" if where else msg)
    return " ".join("; ".join(parts).split())


def json_model(name: str, model: type) -> Any:
    """A before-validator for the settings field `name` holding a JSON object validated as `model`
    (a pydantic model or a dataclass; unknown keys are refused): errors become one line naming the
    keys, which Settings reports as `SERVICE_<NAME>: key: problem`."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    known = {f.name for f in fields(model)} if is_dataclass(model) else None

    def validate(cls: type, value: Any) -> Any:
        if isinstance(value, model):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        if known is not None:
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError("; ".join(f"{k}: unknown key" for k in unknown))
        try:
            return adapter.validate_python(dict(value))
        except ValidationError as exc:
            raise ValueError(describe_errors(exc)) from None

    return field_validator(name, mode="before")(classmethod(validate))


class BusOptions(BaseModel):
    """`SERVICE_BUS`: consumer timings of the Redis Streams bus (defaults are the bus's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: int = Field(100, ge=1, le=10_000)
    block_ms: int = Field(1000, ge=1, le=60_000)
    min_idle_ms: int = Field(60_000, ge=100)
    lease_ms: int = Field(15_000, ge=100)
    max_deliveries: int = Field(5, ge=1)


class ReplicationOptions(BaseModel):
    """`SERVICE_BUS_REPLICATION`: publishes to the order-flow topics wait for this many Redis replicas
    (WAIT, at most `wait_ms`); 0 (the default) does not wait. The chart sets it with Sentinel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: int = Field(0, ge=0, le=5)
    wait_ms: int = Field(100, ge=1, le=10_000)


class PipelineSettings(Settings):
    consumer_name: str | None = Field(None, min_length=1, max_length=200)
    bus: BusOptions = Field(default_factory=BusOptions)
    bus_replication: ReplicationOptions = Field(default_factory=ReplicationOptions)

    _bus = json_model("bus", BusOptions)
    _bus_replication = json_model("bus_replication", ReplicationOptions)


def consumer_name(settings: Settings) -> str:
    """`SERVICE_CONSUMER_NAME`, else $HOSTNAME (the pod name in Kubernetes), else the host name."""
    return getattr(settings, "consumer_name", None) or os.environ.get("HOSTNAME") or socket.gethostname()


def pipeline_bus(settings: Settings, parts: ServiceParts, *,
                 on_acquired: Callable[[str, str, str], Awaitable[None] | None] | None = None,
                 consume: bool = True, spread: bool = False) -> Bus:
    """The service's bus (no I/O yet). With Redis: consumer = pod name, ordered subscriptions of a group
    co-located (one replica reads a partition of all the group's topics), the symbol-keyed topics in
    `SERVICE_BUS_PARTITIONS` streams, metrics in the app's registry. `spread=True` lets the replicas
    divide those partitions (a stage whose state is per symbol); otherwise one replica reads them all
    and the others stand by (account-wide state). `consume=True` first checks that no stream of another
    partition count still holds the group's work (start-up fails naming it), then adds the consumer
    loop as a background task, whose stop finishes the in-flight message, acks it, releases the leases
    and closes the client. Without a Redis URL (documentation builds) an in-memory bus."""
    options = getattr(settings, "bus", None) or BusOptions()
    replication = getattr(settings, "bus_replication", None) or ReplicationOptions()
    metrics = BusMetrics()
    parts.collectors.append(metrics.registry)
    url = redis_url(settings)
    if not url:
        bus: Bus = InMemoryBus(BusConfig(max_deliveries=options.max_deliveries), metrics)
    else:
        consumer = consumer_name(settings)
        client = redis_client(settings, **RedisStreamsBus.client_options(consumer, options.block_ms))
        bus = RedisStreamsBus(
            client, owns_client=True, consumer=consumer, metrics=metrics,
            config=BusConfig(max_deliveries=options.max_deliveries, replicas=replication.replicas,
                             wait_ms=replication.wait_ms, partitions=symbol_partitions(settings.bus_partitions)),
            batch=options.batch, block_ms=options.block_ms, min_idle_ms=options.min_idle_ms,
            lease_ms=options.lease_ms, colocate=True, spread=spread, on_acquired=on_acquired,
            unavailable=BACKEND_UNAVAILABLE)
    parts.state["bus"] = bus
    if consume:
        if isinstance(bus, RedisStreamsBus):
            parts.add_step(bus.check_partitions)
        async def stop() -> None:
            if isinstance(bus, RedisStreamsBus):
                await bus.stop(timeout=BUS_STOP_TIMEOUT)
            else:
                await bus.stop()

        parts.add_task("bus", bus.run, stop)
    else:  # publish only: close the client at shutdown
        parts.add_step(stop=bus.stop)
    return bus


def pipeline_database(settings: Settings, parts: ServiceParts) -> Database | None:
    """The service's pool (opened at start, closed last at stop), or None without a Postgres URL."""
    if not settings.postgres_url:
        return None
    db = Database.from_settings(settings, min_size=1, max_size=4)
    parts.add_step(db.open, db.close)
    parts.state["database"] = db
    return db


# --- stage helpers ----------------------------------------------------------------------------------


class StageGuard:
    """Serialises a stage's bus handlers, timers and state reloads on one asyncio lock.

    `reload` (optional) rebuilds the stage's state from storage. It runs under the lock, so no
    message is handled on a half-loaded state and nothing handled meanwhile is missed by the
    snapshot. Requests coalesce: a reload that started after a request covers it. A handler that
    raises marks the state stale (its changes may be in memory and not in storage); the next
    handler call reloads first, and fails (the bus retries the message) while storage is down.
    """

    def __init__(self, reload: Hook | None = None) -> None:
        self._reload = reload
        self.lock = asyncio.Lock()
        self.stale = False
        self._requested = 0
        self._loaded = 0
        self.reloads = 0

    async def _reload_locked(self) -> None:
        mark = self._requested
        if self._reload is not None:
            await self._reload()
        self._loaded = max(self._loaded, mark)
        self.stale = False
        self.reloads += 1

    async def reload(self, *_: object) -> None:
        """Reload now (ignores its arguments, so it can be the bus's `on_acquired`)."""
        if self._reload is None:
            return
        self._requested += 1
        ticket = self._requested
        async with self.lock:
            if self._loaded >= ticket:
                return
            await self._reload_locked()

    def wrap(self, handler: Callable[..., Awaitable[None] | None]) -> Callable[..., Awaitable[None]]:
        async def guarded(*args: Any) -> None:
            async with self.lock:
                if self.stale and self._reload is not None:
                    self._requested += 1
                    await self._reload_locked()
                try:
                    result = handler(*args)
                    if result is not None:
                        await result
                except BaseException:
                    if self._reload is not None:
                        self.stale = True
                    raise

        return guarded


class ActiveReplica:
    """Whether this replica is the one consuming `topic` for `group` (with one partition exactly one
    replica holds its lease; the others stand by), and the bus hook that reloads state on acquisition.

    Give `on_acquired` to `pipeline_bus()` and then `attach()` the bus. Every acquisition of one of
    the group's streams runs `reload` (if any) before the bus hands out a message of that stream;
    `active()` is true only while every owned stream of `topic` has been acquired *and* reloaded, so
    timers and HTTP writes gated by it never act on the state of a replica that stood by. Without a
    Redis bus (a single in-process instance) it is always active.
    """

    def __init__(self, topic: str, group: str, reload: Hook | None = None) -> None:
        self.topic, self.group, self._reload = topic, group, reload
        self.bus: Bus | None = None
        self._ready: set[str] = set()

    def attach(self, bus: Bus) -> None:
        self.bus = bus

    async def on_acquired(self, topic: str, group: str, stream: str) -> None:
        primary = topic == self.topic and group == self.group
        if primary:
            self._ready.discard(stream)
        if self._reload is not None:
            await self._reload()
        if primary:
            self._ready.add(stream)

    def active(self) -> bool:
        if not isinstance(self.bus, RedisStreamsBus):
            return True
        owned = self.bus.owned_streams(self.topic, self.group)
        self._ready &= owned
        return bool(owned) and owned <= self._ready


class TopicFollower:
    """Reads every message of `topic` in every replica (XREAD, no consumer group): control events
    such as `eafix.system.risk_off`, which each replica must apply, not just one of the group.

    `restore_last()` hands the newest message (if any) to the handler and makes the follower start
    after it; `run()` then reads newer ones until `stop()`. A handler failure is logged and the
    message skipped (control events are state, the next one supersedes it); connection errors back off.
    """

    def __init__(self, bus: RedisStreamsBus, topic: str, handler: Handler, *, partitions: int = 1) -> None:
        self.bus, self.topic, self.handler = bus, topic, handler
        self.streams = stream_names(topic, partitions)
        self.last_ids: dict[str, str] = {s: "$" for s in self.streams}
        self._stopping = asyncio.Event()

    @staticmethod
    def _decode(fields: Mapping[Any, Any]) -> dict[str, Any] | None:
        raw = fields.get(FIELD.encode(), fields.get(FIELD))
        try:
            envelope = json.loads(raw)
        except (TypeError, ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return None
        return envelope if isinstance(envelope, dict) else None

    async def restore_last(self) -> dict[str, Any] | None:
        newest: tuple[tuple[int, int], dict[str, Any]] | None = None
        for stream in self.streams:
            entries = await self.bus.redis.xrevrange(stream, "+", "-", count=1)
            self.last_ids[stream] = "0-0"
            if not entries:
                continue
            entry_id, fields_ = entries[0]
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            self.last_ids[stream] = entry_id
            envelope = self._decode(fields_)
            if envelope is not None:
                ms, _, seq = entry_id.partition("-")
                key = (int(ms), int(seq or 0))
                if newest is None or key > newest[0]:
                    newest = (key, envelope)
        if newest is None:
            return None
        await self._deliver(newest[1])
        return newest[1]

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        try:
            await invoke(self.handler, envelope)
        except Exception:
            log.exception("control message not applied", extra={"topic": self.topic,
                                                                 "event_id": envelope.get("event_id")})

    async def run(self) -> None:
        backoff = Backoff(0.1, 5.0)
        while not self._stopping.is_set():
            try:
                reply = await self.bus.redis.xread(dict(self.last_ids), count=100, block=self.bus.block_ms)
            except CONNECTION_ERRORS as exc:
                log.warning("redis unavailable; backing off", extra={"topic": self.topic, "error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next())
                continue
            backoff.reset()
            for stream, entries in reply or ():
                stream = stream.decode() if isinstance(stream, bytes) else str(stream)
                for entry_id, fields_ in entries:
                    self.last_ids[stream] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    envelope = self._decode(fields_)
                    if envelope is not None:
                        await self._deliver(envelope)

    async def stop(self) -> None:
        self._stopping.set()


class Subscriptions:
    """Stands in for the bus in a stage's `subscribe()`: each handler is wrapped (e.g. by a StageGuard)
    before it is registered, and topics in `follow` go to TopicFollowers instead of a consumer group
    (on the in-memory bus they stay ordinary subscriptions)."""

    def __init__(self, bus: Bus, wrap: Callable[[Handler], Handler] | None = None,
                 follow: Iterable[str] = ()) -> None:
        self.bus = bus
        self._wrap = wrap or (lambda handler: handler)
        self._follow = set(follow)
        self.followers: list[TopicFollower] = []

    def subscribe(self, topic: str, group: str, handler: Handler, *, ordered: bool = True) -> None:
        wrapped = self._wrap(handler)
        if topic in self._follow and isinstance(self.bus, RedisStreamsBus):
            self.followers.append(TopicFollower(self.bus, topic, wrapped,
                                                partitions=self.bus.config.partitions_for(topic)))
        else:
            self.bus.subscribe(topic, group, wrapped, ordered=ordered)

    def run_in(self, parts: ServiceParts) -> None:
        """Start the followers with the service: each restores its topic's newest message at start
        (so a restarted replica knows the latest state), then follows the topic."""
        for follower in self.followers:
            async def restore(follower: TopicFollower = follower) -> None:
                await follower.restore_last()

            parts.add_step(restore)
            parts.add_task(f"follow:{follower.topic}", follower.run, follower.stop)


def setting_error(setting: str, problem: str) -> SettingsError:
    """A SettingsError naming `SERVICE_<SETTING>`, on one line."""
    from eafix.runtime.settings import env_name

    return SettingsError(f"{env_name(setting)}: {' '.join(problem.split())}")
