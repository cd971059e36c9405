"""Riding out a Redis outage in the long-running processes (`supervise worker`, `supervise cron`).

RQ 3 gives up on Redis errors: `Worker.work` logs "found an unhandled exception, quitting" and
returns on any connection error outside its dequeue wait, and `CronScheduler.start` lets the error
out of its loop. Rather than patch RQ, our commands run RQ's loop inside `run_supervised`: when it
ends without a stop having been asked for, wait for Redis (backoff 1 s → 30 s, one log line a
minute while it is away) and run it again.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("supervise.resilience")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
FIRST_WAIT = 1.0
MAX_WAIT = 30.0
LOG_EVERY = 60.0


def backoff(attempt: int, first: float = FIRST_WAIT, cap: float = MAX_WAIT) -> float:
    """The wait before retry number `attempt` (1, 2, 4, … seconds, at most `cap`)."""
    return min(cap, first * 2 ** max(attempt - 1, 0))


class OncePerMinute(logging.Filter):
    """Lets through one record a minute among those whose message starts with a prefix: RQ logs
    each of its own reconnect attempts, and a ten-minute outage must not bury the log."""

    def __init__(self, *prefixes: str, every: float = LOG_EVERY):
        super().__init__()
        self.prefixes = prefixes
        self.every = every
        self._last = -float("inf")

    def filter(self, record: logging.LogRecord) -> bool:
        if not any(str(record.msg).startswith(p) for p in self.prefixes):
            return True
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._last = now
        return True


class RedisLossWithoutTraceback(logging.Filter):
    """RQ's worker reports a lost Redis as "found an unhandled exception, quitting..." with a
    traceback, its scheduler process as "raised an exception" with the traceback in the message:
    misleading, as we carry on (run_supervised). One warning line says it instead."""

    REDIS_ERROR_NAMES = ("redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        exc = record.exc_info[1] if record.exc_info else None
        if "unhandled exception" in message and isinstance(exc, REDIS_ERRORS):
            cause = str(exc)
        elif "raised an exception" in message and record.args:
            last = str(record.args[-1]).strip().splitlines()[-1:] or [""]
            if not last[0].startswith(self.REDIS_ERROR_NAMES):
                return True
            cause = last[0].partition(": ")[2]
        else:
            return True
        record.msg, record.args = "%s lost Redis (%s); waiting for it", (record.name, cause)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class StopFlag:
    """SIGTERM / SIGINT while we wait between runs (RQ's own handlers cover the runs)."""

    def __init__(self) -> None:
        self.set = False

    def install(self) -> None:
        def _stop(*_args: object) -> None:
            self.set = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.set and time.monotonic() < deadline:
            time.sleep(min(0.2, deadline - time.monotonic()))


def wait_for_redis(connection: Redis, stop: StopFlag, what: str) -> bool:
    """Ping until Redis answers (True) or a stop is asked for (False)."""
    attempt, down_since, last_log = 0, None, -float("inf")
    while not stop.set:
        try:
            connection.ping()
        except REDIS_ERRORS as exc:
            attempt += 1
            now = time.monotonic()
            down_since = down_since or now
            if now - last_log >= LOG_EVERY:
                log.warning(
                    "%s: Redis unreachable%s (%s); retrying with backoff up to %.0f s, a line a minute",
                    what,
                    f" for {now - down_since:.0f} s" if now - down_since >= 1 else "",
                    exc,
                    MAX_WAIT,
                )
                last_log = now
            stop.sleep(backoff(attempt))
            continue
        if down_since is not None:
            log.warning("%s: Redis is back after %.0f s; resuming", what, time.monotonic() - down_since)
        return True
    return False


def run_supervised(
    run: Callable[[], bool], connection: Redis, what: str, stop: StopFlag | None = None
) -> None:
    """Call `run` (RQ's loop, which returns True when a stop was asked for) again and again until
    it ends by request, waiting for Redis between runs. Connection errors never end the process;
    any other error is left to the caller (`supervise serve` or systemd restarts the process)."""
    stop = stop or StopFlag()
    runs = 0
    while True:
        stop.install()
        if runs:
            # Not at once: an error that is not Redis's must not spin the CPU.
            stop.sleep(backoff(runs))
        if not wait_for_redis(connection, stop, what):
            return
        started = time.monotonic()
        try:
            if run():
                return
            if stop.set:
                return
            log.warning("%s: RQ's loop ended without a stop request; starting it again", what)
        except REDIS_ERRORS as exc:
            log.warning("%s: lost Redis (%s); waiting for it to come back", what, exc)
        # A run that lasted a while was healthy: the next pause starts short again.
        runs = 1 if time.monotonic() - started > LOG_EVERY else runs + 1
