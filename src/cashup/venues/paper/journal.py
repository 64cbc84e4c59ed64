"""The paper exchange's durable memory: an append-only journal of the commands it applied, in SQLite.

The exchange is deterministic for its configuration and a sequence of commands (each stamped with the
clock reading it ran at), so the journal of those commands *is* its state: replaying it rebuilds the
same books, orders, fills, received client order ids, prices and reports. A command is written (and,
with ``synchronous=FULL``, fsync'ed) before its call returns or anyone hears its reports.

Market ticks are kept compact: consecutive *quiet* advances (ones that filled or expired nothing of a
client) are one row whose step count grows. Replaying such a run at its last clock reading gives the
same state, since nothing in it depended on the clock. Replay is sped up by a snapshot — the pickled
state after some command — taken every so often; the commands after it are replayed on top. A snapshot
that cannot be read (another version of the code wrote it) is ignored and the whole journal replayed.

The journal belongs to one configuration: its fingerprint (seed, fees, instruments, feeds, liquidity)
is stored on creation, and opening it with another raises ``JournalMismatch``.
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cashup.venues.paper.wire import iso, uniso_required

FORMAT_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    quiet INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    command_id INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    state BLOB NOT NULL
);
"""


class JournalMismatch(ValueError):
    """The journal was written by an exchange of another configuration (or another format)."""


class JournalLocked(RuntimeError):
    """Another exchange (in this process or another) has the journal open."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    kind: str
    at: datetime
    body: dict[str, Any]
    quiet: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    command_id: int
    """The last command the snapshot includes."""
    steps: int
    """For an advance row: how many of its steps the snapshot includes (the row may have grown since)."""
    state: bytes


class PaperJournal:
    """One SQLite file. Safe to call from several threads (one lock); not from several processes at once."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None, check_same_thread=False)
        try:
            # One exchange per journal: a second one writing to it would fork its history. The exclusive
            # lock is taken by the first write below and held until ``close`` (or the process dies).
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            self._check_meta(fingerprint)
        except sqlite3.OperationalError as error:
            self._db.close()
            if "locked" in str(error):
                raise JournalLocked(f"{self.path} is in use by another paper exchange") from error
            raise
        except BaseException:
            self._db.close()
            raise

    def _check_meta(self, fingerprint: str) -> None:
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("format", FORMAT_VERSION), ("fingerprint", fingerprint)],
                )
            return
        if meta.get("format") != FORMAT_VERSION:
            raise JournalMismatch(f"{self.path}: journal format {meta.get('format')}, expected {FORMAT_VERSION}")
        if meta.get("fingerprint") != fingerprint:
            raise JournalMismatch(
                f"{self.path} was written by a paper exchange with another configuration "
                f"({meta.get('fingerprint')}); this one is {fingerprint}. Use another journal path."
            )

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)

    # -- reading ---------------------------------------------------------------------------------

    def entries(self, after_id: int = 0) -> Iterator[JournalEntry]:
        """Every command after ``after_id``, oldest first (read in pages; do not append meanwhile)."""
        last = after_id
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, kind, at, body, quiet FROM commands WHERE id > ? ORDER BY id LIMIT 1000", (last,)
                ).fetchall()
            if not rows:
                return
            yield from map(_entry, rows)
            last = rows[-1][0]

    def entry(self, entry_id: int) -> JournalEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, at, body, quiet FROM commands WHERE id = ?", (entry_id,)
            ).fetchone()
        return None if row is None else _entry(row)

    def last_entry(self) -> JournalEntry | None:
        with self._lock:
            row = self._db.execute("SELECT max(id) FROM commands").fetchone()
        return None if row[0] is None else self.entry(row[0])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM commands").fetchone()[0])

    def load_snapshot(self) -> Snapshot | None:
        with self._lock:
            row = self._db.execute("SELECT command_id, steps, state FROM snapshot WHERE id = 1").fetchone()
        return None if row is None else Snapshot(row[0], row[1], row[2])

    # -- writing ---------------------------------------------------------------------------------

    def append(self, kind: str, at: datetime, body: dict[str, Any], *, quiet: bool = False) -> int:
        """Write one command durably; return its id."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO commands (kind, at, body, quiet) VALUES (?, ?, ?, ?)",
                (kind, iso(at), json.dumps(body, separators=(",", ":")), int(quiet)),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def extend_advance(self, entry_id: int, steps: int, at: datetime) -> None:
        """Make the quiet advance ``entry_id`` count ``steps`` steps in all, last run at ``at``."""
        with self._lock:
            self._db.execute(
                "UPDATE commands SET body = ?, at = ? WHERE id = ? AND kind = 'advance' AND quiet = 1",
                (json.dumps({"steps": steps}), iso(at), entry_id),
            )

    def save_snapshot(self, command_id: int, steps: int, state: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO snapshot (id, command_id, steps, state) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET command_id = excluded.command_id, steps = excluded.steps, "
                "state = excluded.state",
                (command_id, steps, state),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(row[0], row[1], uniso_required(row[2], strict=False), json.loads(row[3]), bool(row[4]))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
