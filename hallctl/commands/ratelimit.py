"""Per-token rate limits for commands, shared by every transport that carries a token.

Token buckets (``[api.rate_limit]``): each command a token sends takes one from the
token's role bucket, and a command with its own bucket (``ticket.issue`` …) also from
that one. Empty → :class:`RateLimited` (429 ``rate_limited`` with ``Retry-After``).
Time is the monotonic clock, not the hall's: a limit is about the caller's pace.
Calls without a token (MQTT, where the broker's ACL admits the client; internal
callers) are not limited here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hallctl.config import RateBucket, RateLimitConfig
from hallctl.errors import HallctlError


class RateLimited(HallctlError):
    http_status = 429
    title = "Too many requests"

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(
            "rate_limited",
            f"请求过于频繁,请{self.retry_after_s}秒后再试",
            f"too many requests; retry after {self.retry_after_s} s",
        )


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level = level
        self.stamp = stamp


class RateLimiter:
    """Buckets by (token, bucket name); idle full buckets are forgotten so memory stays bounded."""

    MAX_BUCKETS = 20000

    def __init__(self, cfg: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._buckets: dict[tuple[int, str], _Bucket] = {}

    def _need(self, key: tuple[int, str], spec: RateBucket, now: float) -> float:
        """Seconds until one call fits in this bucket (0: it fits now); refills the bucket."""
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.MAX_BUCKETS:
                self._prune(now)
            b = self._buckets[key] = _Bucket(float(spec.burst), now)
        b.level = min(float(spec.burst), b.level + (now - b.stamp) * spec.rate)
        b.stamp = now
        return 0.0 if b.level >= 1.0 else (1.0 - b.level) / spec.rate

    def check(self, token_id: int | None, role: str, command: str) -> None:
        """Take one call for ``token_id`` from its role's bucket and the command's; raise when either is empty."""
        if not self.cfg.enabled or token_id is None:
            return
        now = self._clock()
        specs = [(f"role:{role}", self.cfg.roles.get(role))]
        specs.append((f"cmd:{command}", self.cfg.commands.get(command)))
        wait = 0.0
        taken: list[_Bucket] = []
        for name, spec in specs:
            if spec is None:
                continue
            key = (token_id, name)
            need = self._need(key, spec, now)
            if need > 0:
                wait = max(wait, need)
            else:
                taken.append(self._buckets[key])
        if wait > 0:
            raise RateLimited(wait)
        for b in taken:
            b.level -= 1.0

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled (they would start full anyway)."""
        full = []
        for key, b in self._buckets.items():
            spec = self.cfg.roles.get(key[1][5:]) if key[1].startswith("role:") else self.cfg.commands.get(key[1][4:])
            if spec is None or b.level + (now - b.stamp) * spec.rate >= spec.burst:
                full.append(key)
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_BUCKETS:  # all busy: forget the oldest half rather than grow
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[: self.MAX_BUCKETS // 2]:
                del self._buckets[key]
