"""Messages go to a file backend of the test's own, read back with read_file_backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from credits.notifications import delivery, services
from credits.notifications.channels import read_file_backend


@pytest.fixture
def sms_file(app, tmp_path):
    """Point the app's SMS backend at a fresh file; call the fixture's value to read what it holds."""
    path = tmp_path / "sms.jsonl"
    app.config["SMS_BACKEND"] = f"file:{path}"

    class Sms:
        def __init__(self) -> None:
            self.path = str(path)

        def __call__(self) -> list[dict]:
            return read_file_backend(self.path)

    return Sms()


DAYTIME = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: no quiet hours


@pytest.fixture
def at(monkeypatch):
    """Fix the clock that notify() and the delivery read (quiet hours, backoff), not the features' own."""

    def set_now(moment: datetime) -> None:
        monkeypatch.setattr(services, "utcnow", lambda: moment)
        monkeypatch.setattr(delivery, "utcnow", lambda: moment)

    return set_now


@pytest.fixture
def daytime(at):
    at(DAYTIME)
