"""HTTP adapter of the data-ingestor: `POST /api/v1/ticks` and `GET /api/v1/prices/latest`.

Wiring (done by the service entry point, not here):

    normalizer = TickNormalizer(clock, IngestConfig(...))
    pipeline = TickPipeline(normalizer, publish_many)      # publish_many: async (list[PriceTick]) -> None
    app.include_router(build_router(normalizer, publish_many, pipeline=pipeline))
    bridge = CsvBridge(BridgeConfig(watch_dir), functools.partial(pipeline.submit, naive_utc=True), clock)

The HTTP API and the CSV bridge share one `TickPipeline`, whose lock makes "decide, publish,
commit" atomic per batch: two batches never accept the same tick, and a batch whose publish fails
leaves no trace (the client or the bridge retries it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from eafix.contracts.events import PriceTick
from eafix.contracts.primitives import format_timestamp
from eafix.data_ingestor.domain import BatchResult, TickNormalizer, spread_pips

__all__ = ["MAX_BODY_BYTES", "PublishMany", "TickPipeline", "build_router"]

PublishMany = Callable[[list[PriceTick]], Awaitable[None]]
MAX_BODY_BYTES = 16 * 1024 * 1024  # 10,000 ticks take ~1 MB; anything far larger is refused unread


class TickPipeline:
    """normalize -> publish -> commit, one batch at a time."""

    def __init__(self, normalizer: TickNormalizer, publish_many: PublishMany) -> None:
        self.normalizer = normalizer
        self._publish_many = publish_many
        self._lock = asyncio.Lock()

    async def submit(self, raws: Sequence[Any], *, naive_utc: bool = False) -> BatchResult:
        """Decide every tick, publish the accepted ones, then record them. If publishing raises,
        nothing is recorded and the exception propagates."""
        async with self._lock:
            result = self.normalizer.evaluate(raws, naive_utc=naive_utc)
            if result.accepted:
                await self._publish_many(result.accepted)
            self.normalizer.commit(result)
            return result


_TICK_SCHEMA = {
    "type": "object",
    "required": ["symbol", "ts", "bid", "ask"],
    "properties": {
        "symbol": {"type": "string", "examples": ["EURUSD"], "description": "6 letters; upper-cased"},
        "ts": {"type": ["string", "number"], "examples": ["2025-01-06T12:00:00.250Z"],
               "description": "RFC 3339 with Z or offset, or epoch seconds"},
        "bid": {"type": ["string", "number"], "examples": ["1.03412"]},
        "ask": {"type": ["string", "number"], "examples": ["1.03419"]},
        "volume": {"type": ["integer", "null"], "minimum": -1, "description": "-1 or null: none"},
    },
}
_BODY_SCHEMA = {
    "oneOf": [
        _TICK_SCHEMA,
        {"type": "array", "items": _TICK_SCHEMA, "maxItems": 10_000},
        {"type": "object", "required": ["ticks"],
         "properties": {"ticks": {"type": "array", "items": _TICK_SCHEMA, "maxItems": 10_000}}},
    ]
}
_RESULT_EXAMPLE = {
    "received": 3, "accepted": 1, "duplicates": [2],
    "rejected": [{"index": 1, "reason": "stale", "detail": "tick is 30.001 s old (max 30 s)"}],
    "detail": "1 of 3 ticks rejected; 1 accepted tick published, 1 duplicate dropped",
}


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _ticks_of(body: bytes, max_body_bytes: int, max_batch: int) -> list[Any] | JSONResponse:
    """The raw ticks of a request body, or the 4xx response saying what is wrong with it."""
    if len(body) > max_body_bytes:
        return _error(413, f"body of {len(body)} bytes exceeds the limit of {max_body_bytes} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body is not valid JSON")
    if isinstance(payload, dict) and "ticks" in payload:
        ticks = payload["ticks"]
        if not isinstance(ticks, list):
            return _error(400, "`ticks` must be an array of tick objects")
    elif isinstance(payload, dict):
        ticks = [payload]
    elif isinstance(payload, list):
        ticks = payload
    else:
        return _error(400, "body must be a tick object, an array of ticks or {\"ticks\": [...]}")
    if len(ticks) > max_batch:
        return _error(413, f"batch of {len(ticks)} ticks exceeds the limit of {max_batch} ticks per request; "
                           f"split it into smaller batches")
    return ticks


def build_router(
    normalizer: TickNormalizer,
    publish_many: PublishMany,
    *,
    pipeline: TickPipeline | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> APIRouter:
    """The data-ingestor's business routes over `normalizer`; accepted ticks go to `publish_many`.

    Pass `pipeline` to share its lock with the CSV bridge (it must wrap the same normalizer).
    """
    if pipeline is None:
        pipeline = TickPipeline(normalizer, publish_many)
    elif pipeline.normalizer is not normalizer:
        raise ValueError("pipeline wraps a different TickNormalizer")
    max_batch = normalizer.config.max_batch
    router = APIRouter(prefix="/api/v1", tags=["prices"])

    @router.post(
        "/ticks",
        summary="Ingest one tick or a batch (up to 10,000)",
        description=(
            "Body: one tick object, an array of ticks, or `{\"ticks\": [...]}`. Every tick is normalised "
            "(symbol, prices, spread bounds, age against the service clock, per-symbol order); accepted "
            "ticks are published on `eafix.price.tick`, duplicates (`symbol:ts:bid:ask`) are dropped. "
            "200 when nothing was rejected; 422 lists each rejected tick by `index` with `reason` and "
            "`detail` — the valid ticks of that batch are still published."
        ),
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
        responses={
            200: {"description": "All ticks accepted (or dropped as duplicates)",
                  "content": {"application/json": {"example": {**_RESULT_EXAMPLE, "rejected": [], "accepted": 2,
                                                                "detail": "ok"}}}},
            400: {"description": "Body is not JSON or not a tick/array"},
            413: {"description": f"More than {max_batch} ticks, or a body over {max_body_bytes} bytes"},
            422: {"description": "Some ticks were rejected; the others were published",
                  "content": {"application/json": {"example": _RESULT_EXAMPLE}}},
            503: {"description": "Publishing failed; nothing was recorded, retry the batch"},
        },
    )
    async def ingest_ticks(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"body of {declared} bytes exceeds the limit of {max_body_bytes} bytes")
        ticks = _ticks_of(await request.body(), max_body_bytes, max_batch)
        if isinstance(ticks, JSONResponse):
            return ticks
        try:
            result = await pipeline.submit(ticks)
        except Exception as exc:  # the bus is down: nothing was committed, the client may retry
            return _error(503, f"publishing failed, nothing was ingested; retry the batch ({type(exc).__name__}: "
                               f"{exc})", headers={"Retry-After": "1"})
        rejected = [r.as_dict() for r in result.rejected]
        parts = [f"{len(result.accepted)} accepted tick{'s' if len(result.accepted) != 1 else ''} published"]
        if result.duplicates:
            parts.append(f"{len(result.duplicates)} duplicate{'s' if len(result.duplicates) != 1 else ''} dropped")
        if rejected:
            detail = f"{len(rejected)} of {len(ticks)} ticks rejected; " + ", ".join(parts)
        else:
            detail = "ok: " + ", ".join(parts)
        content = {
            "received": len(ticks), "accepted": len(result.accepted), "duplicates": result.duplicates,
            "rejected": rejected, "detail": detail,
        }
        return JSONResponse(content, status_code=422 if rejected else 200)

    @router.get(
        "/prices/latest",
        summary="Latest accepted price per symbol",
        description="The last accepted tick of each symbol (or of the symbols asked for), with its spread in "
                    "pips and its age against the service clock. Symbols without a price are listed in `missing`.",
    )
    async def latest_prices(
        symbol: Annotated[list[str] | None, Query(description="Filter; repeat for several symbols")] = None,
    ) -> dict[str, Any]:
        now = normalizer.clock.now()
        latest, instruments = normalizer.latest(), normalizer.instruments
        wanted = sorted({s.strip().upper() for s in symbol}) if symbol else sorted(latest)
        prices = []
        for name in wanted:
            tick = latest.get(name)
            if tick is None:
                continue
            prices.append({
                **tick.model_dump(mode="json"),
                "spread_pips": format(spread_pips(instruments[tick.symbol], tick.bid, tick.ask).normalize(), "f"),
                "age_seconds": round((now - tick.ts).total_seconds(), 6),
            })
        return {"as_of": format_timestamp(now), "prices": prices, "missing": [s for s in wanted if s not in latest]}

    return router
