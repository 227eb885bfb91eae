"""JSON log lines: one object per line with the fixed keys, correlation id from the contextvar."""

from __future__ import annotations

import io
import json
import logging

import pytest

from eafix.runtime.logging import JsonFormatter, configure_logging, correlation_id


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("risk-manager", "INFO", stream)
    yield stream
    root.handlers[:], root.level = saved


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line(captured):
    log = logging.getLogger("eafix.test")
    log.info("order %s sized", "A1", extra={"lots": 0.1})
    log.debug("dropped below INFO")
    log.warning("multi\nline")
    first, second = lines(captured)
    assert first["msg"] == "order A1 sized"
    assert (first["level"], first["logger"], first["service"]) == ("INFO", "eafix.test", "risk-manager")
    assert first["lots"] == 0.1
    assert first["ts"].endswith("+00:00")
    assert "correlation_id" not in first
    assert second["msg"] == "multi\nline"


def test_correlation_id_from_the_contextvar(captured):
    token = correlation_id.set("c-42")
    try:
        logging.getLogger("eafix.test").info("with id")
    finally:
        correlation_id.reset(token)
    logging.getLogger("eafix.test").info("without id")
    with_id, without_id = lines(captured)
    assert with_id["correlation_id"] == "c-42"
    assert "correlation_id" not in without_id


def test_exceptions_are_embedded(captured):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("eafix.test").exception("failed")
    (record,) = lines(captured)
    assert record["level"] == "ERROR"
    assert "RuntimeError: boom" in record["exc"]


def test_uvicorn_logs_go_through_the_json_handler(captured):
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1,
                                            extra={"color_message": "Started \x1b[36m%d\x1b[0m"})
    (record,) = lines(captured)
    assert record["logger"] == "uvicorn.error"
    assert record["msg"] == "Started server process [1]"
    assert "color_message" not in record


def test_unserialisable_extra_falls_back_to_str():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    record.path = object()
    doc = json.loads(JsonFormatter("reporter").format(record))
    assert doc["path"].startswith("<object object")
