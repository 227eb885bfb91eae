"""The watched directory: every refresh, calendar CSV files (`*.csv`) not imported before (by their
sha256, accepted or not) are imported, oldest first. A rejected file is reported once (its import
record, a log line) and tried again only when its bytes change. The directory is read, never written
(it may be a read-only volume)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

ImportFile = Callable[[bytes, str], Awaitable[bool]]


async def scan(directory: Path, known: Callable[[str], Awaitable[bool]], import_file: ImportFile) -> int:
    """Import the new files of `directory`; returns how many were tried."""
    try:
        files = sorted((p for p in directory.glob("*.csv") if p.is_file()), key=lambda p: (p.stat().st_mtime, p.name))
    except OSError as exc:
        log.error("cannot list the calendar directory", extra={"directory": str(directory), "error": str(exc)})
        return 0
    tried = 0
    for path in files:
        try:
            content = path.read_bytes()
        except OSError as exc:
            log.error("cannot read a calendar file", extra={"file": str(path), "error": str(exc)})
            continue
        if await known(hashlib.sha256(content).hexdigest()):
            continue
        tried += 1
        accepted = await import_file(content, path.name)
        (log.info if accepted else log.error)("calendar file imported" if accepted else "calendar file rejected",
                                              extra={"file": str(path)})
    return tried


__all__ = ["scan"]
