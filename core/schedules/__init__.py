"""Scheduled work: channel digests and recurring prompts, run exactly once across processes.

`timing.py` (cron and phrases through croniter, time zones, daylight saving), `manage.py` (the
`/digest` and `/schedule` commands), `digests.py` (reading a channel and posting its digest),
`batch.py` (digests through the Batch API), `runner.py` (the loop that claims and runs due work),
`outcomes.py` (how a run ends). The SQL is the store's (core/store/schedules.py).
"""

from core.schedules.batch import BatchDigests
from core.schedules.digests import Digests
from core.schedules.manage import ScheduleCommands
from core.schedules.runner import Scheduler

__all__ = ["BatchDigests", "Digests", "ScheduleCommands", "Scheduler"]
