"""Group commit of new orders: concurrent placements share one transaction.

Requests hand their validated commands to one writer task per process. It takes what has queued up (up to
``max_batch``), admits the commands in arrival order in one unit of work — the risk figures and balance rows
are read and locked once per batch, so the outcome is what serial admission would give — writes them with
set-based statements, commits once, and only then answers each request. A command that fails (bad input,
conflict) fails alone; if the commit itself fails, each command of the batch is retried in a transaction
of its own, so one bad command never fails its neighbours.

A request from the message broker carries its ``request_id``: one already recorded is answered with its
stored outcome before anything else is read, and a new one is recorded in the batch's transaction.
"""

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cashup.core.errors import DomainError, IdempotencyConflict
from cashup.core.orders.commands import PlaceOrder
from cashup.db.outage import is_unavailable
from cashup.execution.idempotency import IdempotencyRecords, StoredAnswer
from cashup.execution.intake_records import IntakeKey, IntakeRecords
from cashup.execution.placement import Placed, Placement, Resolved, RiskFigures
from cashup.execution.signals import Signals
from cashup.execution.uow import UnitOfWork

log = structlog.get_logger("cashup.execution.group_commit")

Render = Callable[[Placed], StoredAnswer]
"""Turns a placement into the HTTP answer (status and body) that is stored under an ``Idempotency-Key``."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a placement request gets back: the answer to send, and whether it is a replay of a stored one."""

    status_code: int
    body: bytes
    replayed: bool = False


@dataclass
class _Request:
    command: PlaceOrder
    idempotency_key: str | None
    request_id: str | None = None
    redelivered: bool = False
    future: asyncio.Future[Answer] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def key(self) -> tuple[str, str] | None:
        if self.idempotency_key is None:
            return None
        return self.command.principal.user_id, self.idempotency_key

    @property
    def intake_key(self) -> IntakeKey | None:
        if self.request_id is None:
            return None
        return self.command.principal.user_id, self.request_id


class PlacementWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], placement: Placement, render: Render, *,
                 clock: Callable[[], datetime], signals: Signals, idempotency_ttl: timedelta,
                 max_batch: int = 256) -> None:
        self.sessions = sessions
        self.placement = placement
        self.render = render
        self.clock = clock
        self.signals = signals
        self.idempotency_ttl = idempotency_ttl
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def place(self, command: PlaceOrder, idempotency_key: str | None = None, *, request_id: str | None = None,
                    redelivered: bool = False) -> Answer:
        """Place one order through the next batch; returns once its transaction has committed.

        With ``request_id`` (an order request from the broker) a request already recorded for the caller is
        answered with its stored outcome (``replayed``) and counted as a duplicate."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="placement-writer")
        request = _Request(command, idempotency_key, request_id, redelivered)
        self._queue.put_nowait(request)
        # A client that goes away does not take its order with it: the batch writes it all the same, and a
        # retry with the same client_order_id or Idempotency-Key finds it.
        return await asyncio.shield(request.future)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except DBAPIError as error:
                if is_unavailable(error):
                    for request in batch:
                        _settle(request, error)
                    continue
                # a unique key taken by another writer, a deadlock: each order again, in a transaction of its own
                log.info("batch conflicted with another writer; placing its orders one by one", size=len(batch),
                         error=type(error.orig).__name__ if error.orig is not None else repr(error))
                for request in batch:
                    await self._write_alone(request)
            except Exception as error:  # every request of the batch gets the error
                for request in batch:
                    _settle(request, error)

    async def _write_alone(self, request: _Request) -> None:
        try:
            await self._write([request])
        except Exception as error:
            _settle(request, error)

    async def _write(self, batch: list[_Request]) -> None:
        answers: list[tuple[_Request, Answer | BaseException]] = []
        first_of_key: dict[tuple[str, str], _Request] = {}
        followers: list[tuple[_Request, _Request]] = []
        first_of_request: dict[IntakeKey, _Request] = {}
        repeats: list[tuple[_Request, _Request]] = []
        now = self.clock()
        async with self.sessions() as session:
            uow = UnitOfWork(session, self.clock, self.signals)
            records = IdempotencyRecords(session, self.idempotency_ttl)
            intake = IntakeRecords(session)
            await intake.prefetch({request.intake_key for request in batch if request.intake_key is not None})
            resolved: list[tuple[_Request, Resolved]] = []
            for request in batch:
                key = request.key
                if key is not None and key in first_of_key:
                    followers.append((request, first_of_key[key]))
                    continue
                intake_key = request.intake_key
                if intake_key is not None:
                    if intake_key in first_of_request:
                        repeats.append((request, first_of_request[intake_key]))
                        continue
                    stored = await intake.find(intake_key)
                    if stored is not None:
                        await intake.count_duplicate(intake_key, request.redelivered)
                        answers.append((request, Answer(stored.status_code, stored.body, replayed=True)))
                        continue
                    first_of_request[intake_key] = request
                try:
                    resolved.append((request, await self.placement.resolve(uow, request.command)))
                except DomainError as error:
                    answers.append((request, error))
                    continue
                if key is not None:
                    first_of_key[key] = request
            await records.prefetch({request.key for request, _ in resolved if request.key is not None})
            figures = self.placement.figures(uow)
            await figures.prefetch([item for _, item in resolved])
            new_records: list[dict] = []
            new_requests: dict[IntakeKey, dict] = {}
            for request, item in resolved:
                try:
                    answers.append((request, await self._admit(uow, figures, records, request, item, now,
                                                               new_records, new_requests)))
                except DomainError as error:
                    answers.append((request, error))
            for repeat, first in repeats:
                staged = new_requests.get(first.intake_key)  # type: ignore[arg-type]
                if staged is not None:
                    staged["duplicates"] += 1
                    staged["redelivered"] = staged["redelivered"] or repeat.redelivered
            await records.insert_all(new_records)
            await intake.insert_all(list(new_requests.values()))
            await uow.commit()
        outcome = {id(request): answer for request, answer in answers}
        for request, answer in answers:
            _settle(request, answer)
        for follower, first in followers:
            _settle(follower, _replay(outcome[id(first)], follower, first))
        for repeat, first in repeats:
            answer = outcome.get(id(first))
            if isinstance(answer, Answer):
                _settle(repeat, Answer(answer.status_code, answer.body, replayed=True))
            elif answer is not None:
                _settle(repeat, answer)

    async def _admit(self, uow: UnitOfWork, figures: RiskFigures, records: IdempotencyRecords, request: _Request,
                     resolved: Resolved, now: datetime, new_records: list[dict],
                     new_requests: dict[IntakeKey, dict]) -> Answer:
        key = request.key
        if key is not None:
            stored = await records.find(key[0], key[1], resolved.fingerprint, now)
            if stored is not None:
                return Answer(stored.status_code, stored.body, replayed=True)
        placed = await self.placement.admit(uow, resolved, figures)
        stored = self.render(placed)
        if key is not None:
            new_records.append(records.stage(key[0], key[1], resolved.fingerprint, stored, now))
        intake_key = request.intake_key
        if intake_key is not None:
            new_requests[intake_key] = IntakeRecords.stage(intake_key, placed.order.id, stored, request.redelivered,
                                                           now)
        return Answer(stored.status_code, stored.body)


def _replay(answer: Answer | BaseException, follower: _Request, first: _Request) -> Answer | BaseException:
    """What a request gets that came in the same batch as an earlier one under the same ``Idempotency-Key``."""
    if follower.command.fingerprint() != first.command.fingerprint():
        return IdempotencyConflict("Idempotency-Key was already used with a different request body")
    if isinstance(answer, Answer):
        return Answer(answer.status_code, answer.body, replayed=True)
    return answer


def _settle(request: _Request, answer: Answer | BaseException) -> None:
    if request.future.done():
        return
    if isinstance(answer, BaseException):
        request.future.set_exception(answer)
    else:
        request.future.set_result(answer)
