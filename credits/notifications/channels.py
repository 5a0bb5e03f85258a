"""Where an SMS goes, chosen by SMS_BACKEND: `console` (logged), `file:PATH` (JSON lines), or a provider.

A channel's `send` must be idempotent by `key`: delivery is at least once (a worker killed after the channel
accepted a message but before the row says `sent` sends it again), so the channel is where a second send of the
same key has to stop. A real provider gets the key as its request's idempotency token where its API has one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from datetime import datetime
from typing import Protocol

from flask import current_app

log = logging.getLogger(__name__)


class Channel(Protocol):
    def send(self, *, key: str, to: str, kind: str, text: str) -> None:
        """Hand one message over; raise on failure (the delivery is retried with backoff)."""


class ConsoleChannel:
    """Development: the text goes to the log, where the person running `make run` reads it."""

    def send(self, *, key: str, to: str, kind: str, text: str) -> None:
        log.warning("SMS to %s [%s]: %s", to, kind, text)


class FileChannel:
    """Tests and staging: one JSON object a line, {"to", "kind", "text", "sent_at", "key"}. Appends under an
    exclusive lock after looking for the key, so a re-sent key, from any process, adds no second line."""

    def __init__(self, path: str) -> None:
        self.path = path

    def send(self, *, key: str, to: str, kind: str, text: str) -> None:
        line = json.dumps({"to": to, "kind": kind, "text": text, "sent_at": datetime.now().astimezone().isoformat(),
                           "key": key}, ensure_ascii=False)
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            if any(json.loads(existing).get("key") == key for existing in f if existing.strip()):
                log.info("SMS %r already in %s, not written again", key, self.path)
                return
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_file_backend(path: str) -> list[dict]:
    """The messages a file backend holds, oldest first (for tests, benches and the demo)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def make_channel(spec: str) -> Channel:
    if spec == "console":
        return ConsoleChannel()
    if spec.startswith("file:") and len(spec) > len("file:"):
        return FileChannel(spec[len("file:"):])
    if spec == "tencent":
        from credits.notifications.tencent import TencentChannel

        return TencentChannel(current_app.config)
    raise ValueError(f"unknown SMS_BACKEND {spec!r}: console, file:PATH or tencent")


def current_channel() -> Channel:
    return make_channel(current_app.config["SMS_BACKEND"])
