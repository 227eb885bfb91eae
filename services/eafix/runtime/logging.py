"""Structured logs: one JSON object per line on stderr, ready for any log shipper.

Keys: ts (UTC, ISO 8601), level, logger, msg, service, correlation_id (when one is set for the
current request or message), any `extra={...}` fields, and exc for exceptions.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

# Set per request by the HTTP middleware (and later per bus message); contextvars follow
# asyncio tasks and threadpool calls, so every log line of that unit of work carries it.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`. uvicorn adds
# `color_message` (ANSI escapes) to its records: noise in JSON, so it is dropped too.
_SKIP = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName",
                                                                    "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        cid = correlation_id.get()
        if cid:
            doc["correlation_id"] = cid
        for key, value in vars(record).items():
            if key not in _SKIP and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route every logger (uvicorn's included) through one JSON handler on the root logger."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn may have attached its own handlers; ours on the root logger is the only one.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
