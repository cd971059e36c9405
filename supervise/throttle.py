"""Failure budgets: how many wrong access codes or passwords a source may try, counted in Redis.

Flask-Limiter counts a failure after the response, so requests sent in parallel all pass the check
before any is counted (a pentest got 12–14 guesses through a limit of 10). A budget is reserved
*before* the attempt is judged and refunded when it succeeds, so at most `limit` failures ever get
judged in a window, however many arrive at once. Redis being away must never turn a lookup or a
sign-in into a 500: the budget then allows (and logs), as the rest of the limits do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from limits import RateLimitItem, parse
from limits.storage import RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from supervise.queueing import redis_connection

log = logging.getLogger(__name__)


_REFUND = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Budget:
    """`setting` names a limit string of the app config ("10/hour")."""

    name: str
    setting: str

    def _limit(self) -> tuple[int, int]:
        item = parse(current_app.config[self.setting])
        return item.amount, item.get_expiry()

    def _key(self, who: str) -> str:
        return f"supervise:budget:{self.name}:{who}"

    def reserve(self, who: str) -> bool:
        """Count one attempt now; False when it is over the budget (the attempt must not be judged
        as a failure would be: the caller refuses it or, where the owner must not be locked out,
        lets only a right answer through)."""
        amount, window = self._limit()
        try:
            pipe = redis_connection().pipeline()
            pipe.incr(self._key(who))
            pipe.expire(self._key(who), window, nx=True)
            count = pipe.execute()[0]
        except RedisError:
            log.warning("failure budget %s not counted: Redis unavailable", self.name)
            return True
        if count > amount:
            log.warning("failure budget %s spent (%d in %d s)", self.name, count, window)
        return count <= amount

    def refund(self, who: str) -> None:
        """The attempt succeeded: it was not a failure. Only while the window's counter exists, so
        a refund after it expired cannot leave a negative count without an expiry behind."""
        try:
            redis_connection().eval(_REFUND, 1, self._key(who))
        except RedisError:
            log.warning("failure budget %s not refunded: Redis unavailable", self.name)

    def retry_after(self) -> int:
        return self._limit()[1]


def _strategy() -> FixedWindowRateLimiter:
    """This app's fixed-window counter on the rate limiter's storage (RATELIMIT_STORAGE_URI: the
    app's Redis, Sentinel included, keys under LIMITS/), made once per app. Not the Limiter's own:
    that one object is configured by whichever app called init_app last."""
    app = current_app._get_current_object()
    strategy = app.extensions.get("supervise.limits_strategy")
    if strategy is None:
        storage = storage_from_string(
            app.config["RATELIMIT_STORAGE_URI"], **app.config.get("RATELIMIT_STORAGE_OPTIONS", {})
        )
        strategy = app.extensions["supervise.limits_strategy"] = FixedWindowRateLimiter(storage)
    return strategy


# Every window of a limit counted (or looked at) in one Redis round trip; the same keys and
# fixed-window rules as the limits library's (INCRBY, EXPIRE on the first hit of a window), so its
# tools still read them. KEYS: a counter per window; ARGV: each window's expiry and amount, then
# 1 to count or 0 to look. Returns the seconds until the spent windows reset, or -1.
_COUNT_WINDOWS = """
local hit = ARGV[#ARGV] == "1"
local wait = -1
for i, key in ipairs(KEYS) do
  local expiry, amount = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local current
  if hit then
    current = redis.call("incrby", key, 1)
    if current == 1 then redis.call("expire", key, expiry) end
  else
    current = tonumber(redis.call("get", key) or "0") + 1
  end
  if current > amount then
    local ttl = redis.call("ttl", key)
    if ttl < 1 then ttl = expiry end
    if ttl > wait then wait = ttl end
  end
end
return wait
"""


def _windows_script(strategy: FixedWindowRateLimiter):
    """The script above on the strategy's Redis, or None on a storage that is not Redis (memory://)."""
    storage = strategy.storage
    if not isinstance(storage, RedisStorage):
        return None
    script = getattr(strategy, "_supervise_windows_script", None)
    if script is None:
        script = strategy._supervise_windows_script = storage.get_connection().register_script(_COUNT_WINDOWS)
    return script


def count_windows(scope: str, who: str, items: Sequence[RateLimitItem], *, hit: bool = True) -> int | None:
    """Count one request from `who` in each window of `items`, or with `hit=False` only look
    whether one more would fit. Returns the seconds until the spent window resets, None while
    every window has room (or when RATELIMIT_ENABLED is off). Raises RedisError / StorageError:
    the caller decides what the storage being away means."""
    if not items or not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    strategy = _strategy()
    script = _windows_script(strategy)
    if script is not None:
        storage = strategy.storage
        keys = [storage.prefixed_key(item.key_for(scope, who)) for item in items]
        args = [n for item in items for n in (item.get_expiry(), item.amount)]
        wait = int(script(keys=keys, args=[*args, int(hit)], client=storage.get_connection()))
        return max(1, wait) if wait >= 0 else None
    waits = []
    for item in items:
        room = strategy.hit(item, scope, who) if hit else strategy.test(item, scope, who)
        if not room:
            reset = strategy.get_window_stats(item, scope, who).reset_time
            waits.append(max(1, math.ceil(reset - time.time())))
    return max(waits) if waits else None
