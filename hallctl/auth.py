"""Bearer tokens with a role and a scope, stored hashed.

Tokens are 32 random bytes, so a plain SHA-256 is a sound hash (no password
stretching needed); the clear token is shown once, by ``hallctl token create``.

A token that authenticated is remembered for :data:`TOKEN_CACHE_TTL_S` seconds (by
its hash), so a busy kiosk does not cost a database read per request. Unknown tokens
are never remembered, so a token just created elsewhere works on its first request.
The cache belongs to an :class:`Authenticator` (one per daemon). Revoking forgets a
token at once: :meth:`Authenticator.revoke` clears its own cache and, like
:func:`revoke_token` (what ``hallctl token revoke`` runs in another process), replaces a marker file
beside the database (``<db>-tokens``) whose identity authentication checks with one
``stat`` (no thread hop, no query) at most every :data:`REVOCATION_CHECK_S` seconds, so a
token revoked by another process is refused within that bound (a ``stat`` per request was
6 % of the event loop's time at 2,000 requests/s, issue 12). A revocation that bypasses
:func:`revoke_token` (SQL typed into ``sqlite3``) takes effect within the TTL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from hallctl.config import ROLES
from hallctl.errors import Forbidden, Unauthorized
from hallctl.store import Store

log = logging.getLogger(__name__)

Role = Literal["kiosk", "window", "pad", "display", "hvac", "guide", "admin"]
# Roles scoped to windows: a clerk's terminal, and the visitor's evaluation pad (评价器) of that window.
WINDOW_ROLES = ("window", "pad")
# The roles as a clerk or a visitor reads them in a refusal (forbidden).
ROLE_ZH = {
    "kiosk": "取号机",
    "window": "窗口",
    "pad": "评价器",
    "display": "显示屏",
    "hvac": "空调",
    "guide": "导办台",
    "admin": "管理员",
}
ALL_KIOSKS = "*"  # in a kiosk token's list: every kiosk (an empty list, on tokens older than the list, too)


@dataclasses.dataclass(frozen=True)
class Principal:
    role: str
    windows: tuple[int, ...] = ()
    label: str = ""
    token_id: int | None = None
    kiosks: tuple[str, ...] = ()  # kiosk tokens: the kiosks it acts for (empty on older tokens: all)

    def require(self, *roles: str) -> None:
        if self.role != "admin" and self.role not in roles:
            raise Forbidden(
                "forbidden",
                f"此令牌（{ROLE_ZH.get(self.role, self.role)}）无权进行此操作",
                f"role {self.role} may not do this (needs {' or '.join(roles)})",
            )

    def require_window(self, window: int) -> None:
        """A window (or pad) token acts for its own windows only; admin for all."""
        if self.role == "admin":
            return
        if self.role not in WINDOW_ROLES or window not in self.windows:
            raise Forbidden(
                "wrong_window", f"此令牌不能操作{window}号窗口", f"this token may not act for window {window}"
            )

    def acts_for_kiosk(self, kiosk: str) -> bool:
        """A kiosk token acts for its kiosks (all of them when it lists none or ``*``); admin for all."""
        if self.role == "admin":
            return True
        return self.role == "kiosk" and (not self.kiosks or ALL_KIOSKS in self.kiosks or kiosk in self.kiosks)

    @property
    def sees_personal_data(self) -> bool:
        return self.role in ("window", "admin")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_CACHE_TTL_S = 5.0
# How stale the view of the revocation marker may be: a token revoked by another process is refused within this.
REVOCATION_CHECK_S = 0.05


class TokenCache:
    """Principals of recently authenticated tokens, by token hash, for ``ttl`` seconds."""

    def __init__(
        self, ttl: float = TOKEN_CACHE_TTL_S, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self.marker_stamp: tuple[int, int] | None = None  # the revocation marker when last looked at
        self.marker_checked: float | None = None  # when (``clock``) the marker was last looked at

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, p: Principal) -> None:
        now = self.clock()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: e for k, e in self._entries.items() if now < e[0]}
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
        self._entries[token_hash] = (now + self.ttl, p)

    def forget(self, token_id: int | None = None) -> None:
        """Forget one token (by its id), or all of them."""
        if token_id is None:
            self._entries.clear()
        else:
            self._entries = {k: e for k, e in self._entries.items() if e[1].token_id != token_id}


def _marker(store: Store) -> str | None:
    """The file whose replacement tells every process on this database that a token was revoked."""
    if store.path == ":memory:" or store.path.startswith("file:"):
        return None
    return store.path + "-tokens"


def _marker_stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_ino, st.st_mtime_ns)


def _signal_revocation(store: Store) -> None:
    """Replace the marker (a new file: a new inode, so even a coarse clock cannot hide the change)."""
    path = _marker(store)
    if path is None:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{datetime.now(UTC).isoformat()} {secrets.token_hex(8)}\n")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("token revoked, but a running daemon will notice only within %.0f s: %s", TOKEN_CACHE_TTL_S, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


async def create_token(
    store: Store, role: str, windows: tuple[int, ...] = (), label: str = "", *, kiosks: tuple[str, ...] = ()
) -> str:
    """Create a token and return it in clear (shown once; only its hash is stored).

    ``kiosks`` scopes a kiosk token (``hallctl token create`` requires it); a kiosk token
    with none acts for every kiosk, as tokens made before kiosks were listed do.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role in WINDOW_ROLES and not windows:
        raise ValueError(f"a {role} token needs --window N")
    if kiosks and role != "kiosk":
        raise ValueError("only kiosk tokens are scoped to kiosks")
    token = "hct_" + secrets.token_urlsafe(32)
    await store.insert_token(_hash(token), role, tuple(windows), label, datetime.now(UTC), tuple(kiosks))
    return token


async def list_tokens(store: Store) -> list[dict[str, object]]:
    return [
        {
            "id": r.id,
            "role": r.role,
            "windows": list(r.windows),
            "kiosks": list(r.kiosks),
            "label": r.label,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
        }
        for r in await store.tokens()
    ]


async def revoke_token(store: Store, token_id: int) -> bool:
    """Revoke a token and tell every process on this database (the marker file).

    A process that authenticates through an :class:`Authenticator` should revoke through
    :meth:`Authenticator.revoke`, which also forgets the token in its own cache at once.
    """
    revoked = await store.revoke_token(token_id, datetime.now(UTC))
    if revoked:
        _signal_revocation(store)
    return revoked


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


class Authenticator:
    """Checks bearer tokens against the store, remembering recent successes in its own cache.

    One per daemon (built by :class:`hallctl.daemon.Hall`, reached through the context), so
    the cache lives exactly as long as the hall that uses it.
    """

    def __init__(
        self, store: Store, cache: TokenCache | None = None, revocation_check_s: float = REVOCATION_CHECK_S
    ) -> None:
        self._store = store
        self.cache = cache if cache is not None else TokenCache()
        self.revocation_check_s = revocation_check_s
        self._marker = _marker(store)

    def cached(self, token: str | None) -> Principal | None:
        """The principal of a token that authenticated lately, else None (then :meth:`authenticate`).

        A busy kiosk's every request ends here: called before the coroutine, it costs no await.
        """
        if not token:
            return None
        return self._cached(_hash(token))

    def _cached(self, hashed: str) -> Principal | None:
        cache = self.cache
        marker = self._marker
        if marker is not None:
            now = cache.clock()
            checked = cache.marker_checked
            if checked is None or not checked <= now < checked + self.revocation_check_s:
                cache.marker_checked = now
                stamp = _marker_stamp(marker)  # read before the database: a later revocation changes it again
                if stamp != cache.marker_stamp:
                    cache.forget()
                    cache.marker_stamp = stamp
        return cache.get(hashed)

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing_token", "需要令牌", "an Authorization: Bearer token is required")
        hashed = _hash(token)
        p = self._cached(hashed)
        if p is not None:
            return p
        cache = self.cache
        r = await self._store.active_token(hashed)
        if r is None:
            raise Unauthorized("bad_token", "令牌无效或已吊销", "unknown or revoked token")
        p = Principal(role=r.role, windows=r.windows, label=r.label, token_id=r.id, kiosks=r.kiosks)
        if cache.ttl > 0:
            cache.put(hashed, p)
        return p

    async def create(
        self, role: str, windows: tuple[int, ...] = (), label: str = "", *, kiosks: tuple[str, ...] = ()
    ) -> str:
        return await create_token(self._store, role, windows, label, kiosks=kiosks)

    async def tokens(self) -> list[dict[str, object]]:
        return await list_tokens(self._store)

    async def revoke(self, token_id: int) -> bool:
        try:
            return await revoke_token(self._store, token_id)
        finally:
            self.cache.forget(token_id)
