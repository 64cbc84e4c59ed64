"""The paper exchange's durable memory: an append-only journal of the commands its simulator applied.

The simulator (``simulator.PaperSimulator``) is deterministic for its configuration and a sequence of
commands (each stamped with the clock reading it ran at), so the journal of those commands *is* its
state: replaying it rebuilds the same books, orders, fills, received client order ids, prices and
reports. A command is written (and, with ``synchronous=FULL``, fsync'ed) before its call returns or
anyone hears its reports; only the growth of a quiet run of market steps waits for the next sync.

Market ticks are kept compact: consecutive *quiet* advances (ones that filled or expired nothing of a
client) are one row whose step count grows. Replaying such a run at its last clock reading gives the
same state, since nothing in it depended on the clock. Replay is sped up by a snapshot — the pickled
state after some command — taken every so often; the commands after it are replayed on top. A snapshot
that cannot be read (another version of the code wrote it) is ignored and the whole journal replayed.

The journal belongs to one configuration: its fingerprint (seed, fees, instruments, feeds, liquidity)
is stored on creation, and opening it with another raises ``JournalMismatch``.

``PaperJournal`` is that journal for one simulator: it restores the simulator when it opens, records each
command after the simulator applied it, and takes the snapshots. ``JournalFile`` is its SQLite file.
"""

import contextlib
import json
import logging
import pickle
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cashup.venues.paper.simulator import ADVANCE, PaperSimulator
from cashup.venues.paper.wire import iso, uniso_required

logger = logging.getLogger(__name__)

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


class JournalDiverged(RuntimeError):
    """Another exchange wrote to the journal while this one had released it: this one's state is out of date."""


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


class JournalFile:
    """The journal's SQLite file. Safe to call from several threads (one lock); not from several processes at once."""

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
        """Make the quiet advance ``entry_id`` count ``steps`` steps in all, last run at ``at``.

        Written without waiting for the disk: no one has heard of these steps (they filled and expired
        nothing), and the write-ahead log is synced in order, so the next command that is synced makes them
        durable too. A crash before that loses only market steps after the last report, which a restart
        replays the same way a little later."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute(
                    "UPDATE commands SET body = ?, at = ? WHERE id = ? AND kind = 'advance' AND quiet = 1",
                    (json.dumps({"steps": steps}), iso(at), entry_id),
                )
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def save_snapshot(self, command_id: int, steps: int, state: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO snapshot (id, command_id, steps, state) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET command_id = excluded.command_id, steps = excluded.steps, "
                "state = excluded.state",
                (command_id, steps, state),
            )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Write everything appended inside as one transaction: one sync to disk for many commands.

        Nothing is durable until the block ends; a block that raises writes nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with self._lock:
                self._db.execute("ROLLBACK")
            raise
        with self._lock:
            self._db.execute("COMMIT")

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


class PaperJournal:
    """The durable journal of one simulator: opening it restores the simulator from the file at ``path``.

    ``record`` writes a command the simulator has just applied (before anyone hears its reports); every
    ``snapshot_every_steps`` market steps or ``snapshot_every_commands`` order commands (a quarter of the
    orders kept, when that is more) it saves a snapshot. ``release`` closes the file (after a snapshot) so
    that another exchange may open it, and ``reopen`` takes it back, refusing with ``JournalDiverged`` if
    someone wrote to it meanwhile.
    """

    def __init__(self, path: str | Path, simulator: PaperSimulator) -> None:
        self.path = Path(path)
        self._simulator = simulator
        self._file: JournalFile | None = JournalFile(self.path, simulator.fingerprint())
        self._head: tuple[int, int] = (0, 0)
        """The last command written: (row id, steps of that row if it is an advance)."""
        self._open_run: tuple[int, int] | None = None
        """The journal row of the quiet advance run still growing: (id, steps)."""
        self._since_snapshot = (0, 0)
        self._snapshots_failing = False
        try:
            self._restore()
        except BaseException:
            self._file.close()
            raise

    @property
    def is_open(self) -> bool:
        return self._file is not None

    def record(self, kind: str, at: datetime, body: dict[str, Any], *, quiet: bool) -> None:
        """Write one applied command durably; a quiet advance extends the quiet run before it."""
        file = self._opened()
        steps = int(body["steps"]) if kind == ADVANCE else 0
        if kind == ADVANCE and quiet and self._open_run is not None:
            entry_id, run_steps = self._open_run
            file.extend_advance(entry_id, run_steps + steps, at)
            self._open_run = self._head = (entry_id, run_steps + steps)
        else:
            entry_id = file.append(kind, at, body, quiet=quiet and kind == ADVANCE)
            self._head = (entry_id, steps)
            self._open_run = (entry_id, steps) if kind == ADVANCE and quiet else None
        snapshot_steps, snapshot_commands = self._since_snapshot
        self._since_snapshot = (snapshot_steps + steps, snapshot_commands + (kind != ADVANCE))
        config = self._simulator.config
        # A snapshot costs in proportion to the orders kept: spacing snapshots as widely keeps their cost per
        # command flat as the book grows (a restart then replays at most a quarter of that many commands)
        every_commands = max(config.snapshot_every_commands, self._simulator.order_count // 4)
        if self._since_snapshot[0] >= config.snapshot_every_steps or self._since_snapshot[1] >= every_commands:
            self.checkpoint()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Record several commands durably at once: they are on disk when the block ends (see ``JournalFile.batch``)."""
        with self._opened().batch():
            yield

    def checkpoint(self) -> None:
        """Save a snapshot of the simulator, so a restart replays only what follows."""
        file = self._file
        if file is None or self._head[0] == 0:
            return
        started = time.perf_counter()
        try:
            state = pickle.dumps(self._simulator.snapshot_state(), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            if not self._snapshots_failing:
                logger.warning("paper exchange: the state cannot be pickled; restarts replay the whole journal",
                               exc_info=True)
            self._snapshots_failing = True
            return
        file.save_snapshot(*self._head, state)
        self._since_snapshot = (0, 0)
        if (took := time.perf_counter() - started) > 0.5:
            logger.warning("paper exchange: a snapshot of %d bytes took %.1fs (%d orders kept)",
                           len(state), took, self._simulator.order_count)

    def release(self) -> None:
        """Close the file; ``reopen`` takes it back."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def reopen(self) -> None:
        """Open the file again after ``release``, if it still ends where this journal left it."""
        if self._file is not None:
            return
        file = JournalFile(self.path, self._simulator.fingerprint())
        last = file.last_entry()
        head = (0, 0) if last is None else (last.id, int(last.body["steps"]) if last.kind == ADVANCE else 0)
        if head != self._head:
            file.close()
            raise JournalDiverged("another paper exchange wrote to the journal since this one released it")
        self._file = file

    def _opened(self) -> JournalFile:
        if self._file is None:
            raise RuntimeError(f"the journal {self.path} is released")
        return self._file

    def _restore(self) -> None:
        """Rebuild the simulator from the file: its snapshot, if readable, then every command after it."""
        file, simulator = self._opened(), self._simulator
        after = 0
        snapshot = file.load_snapshot()
        if snapshot is not None:
            fresh = simulator.snapshot_state()
            try:
                simulator.load_snapshot_state(pickle.loads(snapshot.state))
            except Exception:
                logger.warning("paper exchange: the journal's snapshot cannot be read; replaying it all",
                               exc_info=True)
                simulator.load_snapshot_state(fresh)
            else:
                after = snapshot.command_id
                entry = file.entry(after)
                if entry is not None and entry.kind == ADVANCE and int(entry.body["steps"]) > snapshot.steps:
                    # The quiet run the snapshot ended in grew afterwards: replay its remaining steps.
                    simulator.apply(ADVANCE, {"steps": int(entry.body["steps"]) - snapshot.steps}, entry.at)
        replayed = 0
        for entry in file.entries(after):
            simulator.apply(entry.kind, entry.body, entry.at)
            replayed += 1
        last = file.last_entry()
        if last is not None:
            steps = int(last.body["steps"]) if last.kind == ADVANCE else 0
            self._head = (last.id, steps)
            self._open_run = (last.id, steps) if last.kind == ADVANCE and last.quiet else None
        if replayed:
            logger.info("paper exchange: replayed %d journal commands from %s", replayed, self.path)
        if replayed >= 100:
            self.checkpoint()
