"""Online backups: SQLite's backup API (a consistent copy while writers carry on) or pg_dump's custom format."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    pass


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq tools take it: no `+psycopg` driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup(url: str, dest: Path) -> Path:
    """Copy the database at `url` to `dest`, consistent as of one moment, without stopping the app.

    SQLite: the online backup API reads inside one transaction, so concurrent commits are either wholly in the
    copy or not at all. PostgreSQL: `pg_dump --format=custom` (restore with `pg_restore`) dumps one snapshot.
    Raises BackupError when the tool fails or `dest` exists (a backup never overwrites another).
    """
    parsed = make_url(url)
    if dest.exists():
        raise BackupError(f"{dest} exists; a backup never overwrites another")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise BackupError("an in-memory SQLite database cannot be backed up")
        source = sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)
        target = sqlite3.connect(dest)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return dest
    if parsed.get_backend_name() == "postgresql":
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
        done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dest}", libpq_url(url)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            dest.unlink(missing_ok=True)
            raise BackupError(done.stderr.strip() or f"pg_dump exited with {done.returncode}")
        return dest
    raise BackupError(f"no backup method for {parsed.get_backend_name()}")
