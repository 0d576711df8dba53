"""Structured, quiet-by-default logging: `key=value` lines on stderr, WARNING and up unless asked."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any


class KeyValueFormatter(logging.Formatter):
    """Formats records as `ts level logger msg k=v ...` so logs stay greppable."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        extra = "".join(f" {k}={_quote(v)}" for k, v in fields.items())
        line = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname.lower()} {record.name}: {record.getMessage()}{extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: object) -> str:
    text = str(value)
    return repr(text) if (not text or any(c in text for c in ' "=\n')) else text


def setup_logging(verbose: bool = False) -> None:
    """Configure the root logger once; VIRTSTACK_LOG=debug|info|warning overrides `verbose`."""
    level_name = os.environ.get("VIRTSTACK_LOG", "debug" if verbose else "warning").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name, logging.WARNING))


def kv(**fields: object) -> dict[str, dict[str, object]]:
    """`log.info("started", extra=kv(domain=name, pid=pid))`."""
    return {"fields": fields}
