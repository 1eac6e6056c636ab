"""Schedules, their runs and the Batch API jobs digests wait in.

Every due run is claimed exactly once across processes: the claim selects the due schedules
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers take different rows and never
wait for each other; SQLite's single writer runs one claim at a time), inserts one run per
schedule and due time (a unique key, so even a second claim of the same period inserts nothing)
and moves the schedule to its next run after now, all in one transaction. However many periods
passed while no process ran, that is one run (a catch-up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.events import ConversationKey, Platform
from core.store.db import Database, Row, Tx
from core.store.text import storable

OPEN = ("running", "batched", "posting")
OUTCOMES = ("done", "empty", "skipped", "failed")
SCHEDULE_COLUMNS = (
    "s.id, s.kind, s.platform, s.workspace, s.channel, s.thread, s.owner_id, s.owner_name, "
    "s.spec, s.cron, s.time_zone, s.prompt, s.status, s.next_run_at, s.last_run_at, "
    "s.last_outcome, s.last_detail, s.covered_until, s.skip_noticed, s.created_at"
)
RUN_COLUMNS = (
    "r.id, r.due_at, r.catch_up, r.status, r.window_start, r.window_end, r.payload, r.batch_id, "
    "r.detail, r.started_at, r.finished_at"
)
BATCH_COLUMNS = (
    "id, platform, endpoint, input_file_id, status, remote_status, polls, next_poll_at, "
    "created_at, expires_at"
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule: what runs where, whose it is, when, and how its last run went."""

    id: int
    kind: str  # "digest" or "prompt"
    key: ConversationKey
    owner_id: str
    owner_name: str
    spec: str
    cron: str
    time_zone: str
    prompt: str
    status: str  # "active", "paused" or "cancelled"
    next_run_at: float
    last_run_at: float | None
    last_outcome: str
    last_detail: str
    covered_until: float | None
    skip_noticed: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a schedule (a period's, or one asked for now)."""

    id: int
    schedule: Schedule
    due_at: float
    catch_up: bool
    status: str
    window_start: float | None = None
    window_end: float | None = None
    payload: str = ""
    batch_id: str | None = None
    detail: str = ""
    started_at: float = 0.0
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """A Batch API job of digests, polled until it ends."""

    id: str
    platform: str
    endpoint: str
    input_file_id: str
    status: str
    remote_status: str
    polls: int
    next_poll_at: float
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """What a command asks to schedule."""

    kind: str
    key: ConversationKey
    owner_id: str
    owner_name: str
    spec: str
    cron: str
    time_zone: str
    next_run_at: float
    prompt: str = ""
    covered_until: float | None = None  # a digest's first window starts here


def _schedule(row: Row, offset: int = 0) -> Schedule:
    v = tuple(row)[offset : offset + 20]
    return Schedule(
        id=int(v[0]),
        kind=v[1],
        key=ConversationKey(Platform(v[2]), v[3], v[4], v[5]),
        owner_id=v[6],
        owner_name=v[7],
        spec=v[8],
        cron=v[9],
        time_zone=v[10],
        prompt=v[11],
        status=v[12],
        next_run_at=float(v[13]),
        last_run_at=None if v[14] is None else float(v[14]),
        last_outcome=v[15],
        last_detail=v[16],
        covered_until=None if v[17] is None else float(v[17]),
        skip_noticed=bool(v[18]),
        created_at=float(v[19]),
    )


def _run(row: Row) -> Run:
    """A row of `RUN_COLUMNS` followed by `SCHEDULE_COLUMNS`."""
    v = tuple(row)
    return Run(
        id=int(v[0]),
        due_at=float(v[1]),
        catch_up=bool(v[2]),
        status=v[3],
        window_start=None if v[4] is None else float(v[4]),
        window_end=None if v[5] is None else float(v[5]),
        payload=v[6],
        batch_id=v[7],
        detail=v[8],
        started_at=float(v[9]),
        finished_at=None if v[10] is None else float(v[10]),
        schedule=_schedule(row, 11),
    )


def _batch(row: Row) -> Batch:
    v = tuple(row)
    return Batch(
        id=v[0],
        platform=v[1],
        endpoint=v[2],
        input_file_id=v[3],
        status=v[4],
        remote_status=v[5],
        polls=int(v[6]),
        next_poll_at=float(v[7]),
        created_at=float(v[8]),
        expires_at=float(v[9]),
    )


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


class Schedules:
    """Reads and writes of schedules, runs and batches; every claim is one transaction."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    @property
    def _skip_locked(self) -> str:
        """PostgreSQL: lock the rows read, skipping rows another claim holds (SQLite: its one
        writer already runs claims one at a time)."""
        return " FOR UPDATE OF s SKIP LOCKED" if self._db.dialect == "postgresql" else ""

    @property
    def _locked(self) -> str:
        return " FOR UPDATE OF s" if self._db.dialect == "postgresql" else ""

    # -- schedules -------------------------------------------------------------------------

    async def add(self, new: NewSchedule, *, now: float) -> Schedule:
        """Store a new schedule (a digest replaces the timing and owner of the channel's digest,
        if it has one; what it covered stays)."""

        async def store(tx: Tx) -> Schedule:
            if new.kind == "digest":
                row = await tx.fetchone(
                    f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.kind = 'digest' AND "
                    "s.platform = ? AND s.workspace = ? AND s.channel = ? "
                    "AND s.status != 'cancelled'",
                    (new.key.platform.value, new.key.workspace, new.key.channel),
                )
                if row is not None:
                    old = _schedule(row)
                    await tx.execute(
                        "UPDATE schedules SET owner_id = ?, owner_name = ?, spec = ?, cron = ?, "
                        "time_zone = ?, status = 'active', next_run_at = ?, skip_noticed = 0, "
                        "updated_at = ? WHERE id = ?",
                        (
                            new.owner_id,
                            storable(new.owner_name),
                            storable(new.spec),
                            new.cron,
                            new.time_zone,
                            new.next_run_at,
                            now,
                            old.id,
                        ),
                    )
                    return await self._one(tx, old.id)
            key = new.key
            row = await tx.fetchone(
                "INSERT INTO schedules (kind, platform, workspace, channel, thread, owner_id, "
                "owner_name, spec, cron, time_zone, prompt, next_run_at, covered_until, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (
                    new.kind,
                    key.platform.value,
                    key.workspace,
                    key.channel,
                    key.thread,
                    new.owner_id,
                    storable(new.owner_name),
                    storable(new.spec),
                    new.cron,
                    new.time_zone,
                    storable(new.prompt),
                    new.next_run_at,
                    new.covered_until,
                    now,
                    now,
                ),
            )
            assert row is not None
            return await self._one(tx, int(row[0]))

        return await self._db.write(store)

    async def _one(self, tx: Tx, schedule_id: int) -> Schedule:
        row = await tx.fetchone(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.id = ?", (schedule_id,)
        )
        assert row is not None
        return _schedule(row)

    async def get(self, schedule_id: int) -> Schedule | None:
        """The schedule with this id (whatever its status)."""
        row = await self._db.fetchone(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.id = ?", (schedule_id,)
        )
        return _schedule(row) if row else None

    async def digest_of(self, key: ConversationKey) -> Schedule | None:
        """The channel's digest (active or paused), if it has one."""
        row = await self._db.fetchone(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.kind = 'digest' AND "
            "s.platform = ? AND s.workspace = ? AND s.channel = ? AND s.status != 'cancelled'",
            (key.platform.value, key.workspace, key.channel),
        )
        return _schedule(row) if row else None

    async def in_channel(self, key: ConversationKey) -> list[Schedule]:
        """The channel's schedules that are not cancelled, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.platform = ? AND "
            "s.workspace = ? AND s.channel = ? AND s.status != 'cancelled' ORDER BY s.id",
            (key.platform.value, key.workspace, key.channel),
        )
        return [_schedule(row) for row in rows]

    async def cancel(self, schedule_id: int, *, now: float) -> bool:
        """Cancel a schedule (runs already claimed still finish); False if it was not live."""
        changed = await self._db.execute(
            "UPDATE schedules SET status = 'cancelled', updated_at = ? "
            "WHERE id = ? AND status != 'cancelled'",
            (now, schedule_id),
        )
        return changed > 0

    async def pause(self, schedule_id: int, detail: str, *, now: float) -> bool:
        """Pause an active schedule, once; True for the call that paused it."""
        changed = await self._db.execute(
            "UPDATE schedules SET status = 'paused', last_detail = ?, updated_at = ? "
            "WHERE id = ? AND status = 'active'",
            (storable(detail[:500]), now, schedule_id),
        )
        return changed > 0

    async def note_skip(self, schedule_id: int) -> bool:
        """Claim the one notice of a streak of skipped runs: True the first time only."""
        changed = await self._db.execute(
            "UPDATE schedules SET skip_noticed = 1 WHERE id = ? AND skip_noticed = 0",
            (schedule_id,),
        )
        return changed > 0

    # -- runs ------------------------------------------------------------------------------

    async def claim_due(
        self,
        platforms: Sequence[str],
        *,
        now: float,
        next_after: Callable[[Schedule, float], float],
        limit: int = 50,
    ) -> list[Run]:
        """Claim the due runs of schedules on `platforms`, once across every process.

        `next_after(schedule, moment)` is the schedule's first run after a moment; a schedule
        whose next run after its due time has also passed is claimed once, marked a catch-up.
        """
        if not platforms:
            return []

        async def claim(tx: Tx) -> list[Run]:
            rows = await tx.fetchall(
                f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.status = 'active' "
                f"AND s.next_run_at <= ? AND s.platform IN ({_marks(platforms)}) "
                f"ORDER BY s.next_run_at, s.id LIMIT ?{self._skip_locked}",
                (now, *platforms, limit),
            )
            claimed = []
            for row in rows:
                schedule = _schedule(row)
                catch_up = next_after(schedule, schedule.next_run_at) <= now
                inserted = await tx.fetchone(
                    "INSERT INTO schedule_runs (schedule_id, kind, due_at, catch_up, owner, "
                    "started_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (schedule_id, due_at) DO NOTHING RETURNING id",
                    (
                        schedule.id,
                        schedule.kind,
                        schedule.next_run_at,
                        int(catch_up),
                        self.owner,
                        now,
                    ),
                )
                await tx.execute(
                    "UPDATE schedules SET next_run_at = ?, last_run_at = ?, updated_at = ? "
                    "WHERE id = ?",
                    (next_after(schedule, now), now, now, schedule.id),
                )
                if inserted is not None:
                    run = Run(int(inserted[0]), schedule, schedule.next_run_at, catch_up, "running")
                    claimed.append(run)
            return claimed

        return await self._db.write(claim, serializable=False)

    async def claim_now(self, schedule_id: int, *, now: float) -> Run | None:
        """A run of the schedule now, beside its periodic ones (`/digest now`); None when the
        schedule is not live, or a run of it is open already."""

        async def claim(tx: Tx) -> Run | None:
            row = await tx.fetchone(
                f"SELECT {SCHEDULE_COLUMNS} FROM schedules s WHERE s.id = ? "
                f"AND s.status != 'cancelled'{self._locked}",
                (schedule_id,),
            )
            if row is None:
                return None
            busy = await tx.fetchone(
                f"SELECT 1 FROM schedule_runs WHERE schedule_id = ? AND status IN ({_marks(OPEN)})",
                (schedule_id, *OPEN),
            )
            if busy is not None:
                return None
            last = await tx.fetchone(
                "SELECT MAX(due_at) FROM schedule_runs WHERE schedule_id = ?", (schedule_id,)
            )
            due = now if last is None or last[0] is None else max(now, float(last[0]) + 0.001)
            inserted = await tx.fetchone(
                "INSERT INTO schedule_runs (schedule_id, kind, due_at, owner, started_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (schedule_id, row[1], due, self.owner, now),
            )
            assert inserted is not None
            return Run(int(inserted[0]), _schedule(row), due, False, "running")

        return await self._db.write(claim, serializable=False)

    async def finish(
        self,
        run: Run,
        outcome: str,
        detail: str = "",
        *,
        now: float,
        covered_until: float | None = None,
    ) -> bool:
        """Close an open run with its outcome (done, empty, skipped, failed) and note it on the
        schedule; a digest that was posted moves the schedule's window on to `covered_until`.
        Returns False (and writes nothing) when the run was closed already."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")

        async def close(tx: Tx) -> bool:
            changed = await tx.execute(
                "UPDATE schedule_runs SET status = ?, detail = ?, finished_at = ?, payload = '' "
                f"WHERE id = ? AND status IN ({_marks(OPEN)})",
                (outcome, storable(detail[:500]), now, run.id, *OPEN),
            )
            if not changed:
                return False
            fresh = outcome in ("done", "empty")
            await tx.execute(
                "UPDATE schedules SET last_outcome = ?, last_detail = ?, updated_at = ?, "
                "covered_until = COALESCE(?, covered_until), "
                "skip_noticed = CASE WHEN ? = 1 THEN 0 ELSE skip_noticed END WHERE id = ?",
                (outcome, storable(detail[:500]), now, covered_until, int(fresh), run.schedule.id),
            )
            return True

        return await self._db.write(close, serializable=False)

    async def runs(self, schedule_id: int) -> list[Run]:
        """Every run of a schedule, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {RUN_COLUMNS}, {SCHEDULE_COLUMNS} FROM schedule_runs r "
            "JOIN schedules s ON s.id = r.schedule_id WHERE r.schedule_id = ? ORDER BY r.id",
            (schedule_id,),
        )
        return [_run(row) for row in rows]

    async def open_elsewhere(self) -> list[tuple[int, str, str]]:
        """(run id, owner, kind) of runs other processes hold open (for the orphan sweep)."""
        rows = await self._db.fetchall(
            "SELECT id, owner, kind FROM schedule_runs WHERE status IN ('running', 'posting') "
            "AND owner != ?",
            (self.owner,),
        )
        return [(int(row[0]), str(row[1]), str(row[2])) for row in rows]

    async def fail_orphan(self, run_id: int, owner: str, *, now: float) -> bool:
        """Close a run whose process stopped mid-run as failed, once (it is not run again: it
        may have posted already). The schedule's window stays, so nothing is left out."""

        async def close(tx: Tx) -> bool:
            changed = await tx.execute(
                "UPDATE schedule_runs SET status = 'failed', detail = 'process stopped', "
                "finished_at = ?, payload = '' WHERE id = ? AND owner = ? "
                "AND status IN ('running', 'posting')",
                (now, run_id, owner),
            )
            if changed:
                await tx.execute(
                    "UPDATE schedules SET last_outcome = 'failed', last_detail = 'process stopped' "
                    "WHERE id = (SELECT schedule_id FROM schedule_runs WHERE id = ?)",
                    (run_id,),
                )
            return changed > 0

        return await self._db.write(close, serializable=False)

    # -- batches ---------------------------------------------------------------------------

    async def batched(
        self, batch: Batch, runs: Sequence[tuple[Run, str, float, float]]
    ) -> list[int]:
        """Store a submitted batch and move its runs into it, with each run's payload (its
        request and links) and message window; returns the run ids moved."""

        async def store(tx: Tx) -> list[int]:
            await tx.execute(
                f"INSERT INTO schedule_batches ({BATCH_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.id,
                    batch.platform,
                    batch.endpoint,
                    batch.input_file_id,
                    batch.status,
                    batch.remote_status,
                    batch.polls,
                    batch.next_poll_at,
                    batch.created_at,
                    batch.expires_at,
                ),
            )
            moved = []
            for run, payload, start, end in runs:
                changed = await tx.execute(
                    "UPDATE schedule_runs SET status = 'batched', batch_id = ?, payload = ?, "
                    "window_start = ?, window_end = ?, owner = '' WHERE id = ? "
                    "AND status = 'running' AND owner = ?",
                    (batch.id, storable(payload), start, end, run.id, self.owner),
                )
                if changed:
                    moved.append(run.id)
            return moved

        return await self._db.write(store, serializable=False)

    async def due_batches(self, platforms: Sequence[str], *, now: float) -> list[Batch]:
        """Open batches on `platforms` whose next poll is due and that nobody is polling."""
        if not platforms:
            return []
        rows = await self._db.fetchall(
            f"SELECT {BATCH_COLUMNS} FROM schedule_batches WHERE status = 'submitted' "
            f"AND next_poll_at <= ? AND lease_until <= ? AND platform IN ({_marks(platforms)}) "
            "ORDER BY next_poll_at",
            (now, now, *platforms),
        )
        return [_batch(row) for row in rows]

    async def lease_batch(self, batch_id: str, *, now: float, lease: float) -> bool:
        """Take the next poll of a batch for `lease` seconds; False when another process has it."""
        changed = await self._db.execute(
            "UPDATE schedule_batches SET lease_owner = ?, lease_until = ? WHERE id = ? "
            "AND status = 'submitted' AND lease_until <= ? AND next_poll_at <= ?",
            (self.owner, now + lease, batch_id, now, now),
        )
        return changed > 0

    async def poll_later(self, batch_id: str, remote_status: str, *, next_poll_at: float) -> None:
        """The batch is still running: poll it again at `next_poll_at` (any process may)."""
        await self._db.execute(
            "UPDATE schedule_batches SET remote_status = ?, next_poll_at = ?, polls = polls + 1, "
            "lease_until = 0 WHERE id = ? AND lease_owner = ?",
            (remote_status, next_poll_at, batch_id, self.owner),
        )

    async def collected(self, batch_id: str, remote_status: str, *, now: float) -> None:
        """The batch ended and its results were taken."""
        await self._db.execute(
            "UPDATE schedule_batches SET status = 'collected', remote_status = ?, "
            "finished_at = ?, polls = polls + 1, lease_until = 0 WHERE id = ?",
            (remote_status, now, batch_id),
        )

    async def batch_runs(self, batch_id: str) -> list[Run]:
        """The runs still waiting in a batch."""
        rows = await self._db.fetchall(
            f"SELECT {RUN_COLUMNS}, {SCHEDULE_COLUMNS} FROM schedule_runs r "
            "JOIN schedules s ON s.id = r.schedule_id WHERE r.batch_id = ? "
            "AND r.status = 'batched' ORDER BY r.id",
            (batch_id,),
        )
        return [_run(row) for row in rows]

    async def take(self, run_id: int) -> bool:
        """Take a batched run to post its digest, once across processes."""
        changed = await self._db.execute(
            "UPDATE schedule_runs SET status = 'posting', owner = ? WHERE id = ? "
            "AND status = 'batched'",
            (self.owner, run_id),
        )
        return changed > 0

    async def batch(self, batch_id: str) -> Batch | None:
        """A stored batch."""
        row = await self._db.fetchone(
            f"SELECT {BATCH_COLUMNS} FROM schedule_batches WHERE id = ?", (batch_id,)
        )
        return _batch(row) if row else None

    async def counts(self) -> dict[tuple[str, str], int]:
        """Runs by (kind, status): what `/metrics` counts, as the database has it."""
        rows = await self._db.fetchall(
            "SELECT kind, status, COUNT(*) FROM schedule_runs GROUP BY kind, status"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}
