"""Admin accounts (argon2 passwords, roles, lockout, optional TOTP) and console sessions.

People log in as themselves; the bearer tokens stay for devices and integrators. A
session lives in memory only (a restart logs everyone out, which is the safe side) and
ends after ``[admin] session_idle_minutes`` without a request or ``session_max_hours``
after login. Each session carries a CSRF token that the page sends back in a header on
every state-changing request (double submit: the cookie is readable by the page, the
session cookie is not). Passwords are never logged and never leave this module except
as argon2 hashes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hallctl.config import Config
from hallctl.errors import Conflict, Forbidden, HallctlError, Refused, Unauthorized
from hallctl.store import Store
from hallctl.store.admin import AdminAccount

log = logging.getLogger(__name__)

ADMIN_ROLES = ("hall_admin", "supervisor", "readonly")
MIN_PASSWORD = 10
# Login challenges (password accepted, TOTP code awaited) expire after this long.
CHALLENGE_S = 300.0
if TYPE_CHECKING:
    from argon2 import PasswordHasher


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2 (imported at the first login, not at the daemon's start)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password: an unknown name costs the same argon2 work as a known one."""
    return _hasher().hash(secrets.token_urlsafe(16))


class AccountLocked(HallctlError):
    http_status = 423
    title = "Locked"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise Refused(
            "weak_password",
            f"密码至少需要{MIN_PASSWORD}个字符",
            f"a password needs at least {MIN_PASSWORD} characters",
        )
    return _hasher().hash(password)


def _check_password(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(stored if stored is not None else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second step ``code`` belongs to (now, or one step either side for clock drift), else None."""
    import pyotp  # only at a TOTP sign-in: a hall without console TOTP never loads it (issue 12, goal 4)

    totp = pyotp.TOTP(secret)
    code = code.strip()
    base = totp.timecode(now)
    for offset in (0, -1, 1):
        when = now + timedelta(seconds=offset * totp.interval)
        if secrets.compare_digest(totp.at(when), code):
            return base + offset
    return None


@dataclasses.dataclass
class Session:
    name: str
    role: str
    csrf: str
    created: datetime
    last_seen: datetime
    totp_enabled: bool

    def may_edit(self) -> bool:
        return self.role == "hall_admin"


@dataclasses.dataclass
class _Challenge:
    name: str
    expires: datetime


class AdminConsole:
    """Accounts, logins, sessions and the audit log of one hall (one per daemon, or per CLI call)."""

    def __init__(
        self,
        cfg: Config,
        store: Store,
        clock: Callable[[], datetime],
        config_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.config_path = config_path
        self.sessions: dict[str, Session] = {}  # by sha256 of the session id (the cookie holds the id)
        self.challenges: dict[str, _Challenge] = {}
        self.pending_totp: dict[str, str] = {}  # account -> secret offered at enrolment, not yet confirmed
        self.totp_last_step: dict[str, int] = {}  # account -> the time step of its last accepted code
        self.edit_lock = asyncio.Lock()
        # One argon2 computation at a time (~0.17 s of CPU each, bench/admin_edit.py): a flood of
        # logins queues here instead of taking both cores from the queue.
        self.hash_slot = asyncio.Semaphore(1)

    # ---- accounts ------------------------------------------------------------------------

    async def add_account(self, name: str, role: str, password: str, actor: str) -> dict[str, Any]:
        if role not in ADMIN_ROLES:
            raise Refused("unknown_role", f"未知角色 {role}", f"unknown role {role!r}; one of {', '.join(ADMIN_ROLES)}")
        if not name or len(name) > 64 or not name.isprintable() or name.strip() != name:
            raise Refused("bad_name", "账号名称无效", "an account name is 1-64 printable characters")
        if await self.store.admin_account(name) is not None:
            raise Conflict("account_exists", f"账号 {name} 已存在", f"account {name} already exists")
        async with self.hash_slot:
            hashed = await asyncio.to_thread(hash_password, password)
        acc = await self.store.insert_admin_account(name, role, hashed, self.clock(), actor)
        return acc.public()

    async def accounts(self) -> list[dict[str, Any]]:
        return [a.public() for a in await self.store.admin_accounts()]

    async def set_role(self, name: str, role: str, actor: str) -> None:
        acc = await self._account(name)
        if role not in ADMIN_ROLES:
            raise Refused("unknown_role", f"未知角色 {role}", f"unknown role {role!r}")
        await self.store.update_admin_account(
            name, {"role": role}, (self.clock(), actor, "account.role", {"role": acc.role}, {"role": role})
        )
        for s in self.sessions.values():
            if s.name == name:
                s.role = role

    async def change(
        self, name: str, actor: str, role: str | None = None, disabled: bool | None = None
    ) -> dict[str, Any]:
        """A hall admin changes another account's role or disables (enables) it; audited like every change.

        Nobody changes their own role or disables themselves, and the last enabled hall admin
        stays one: otherwise a slip would lock the hall out of its own console (the CLI's
        ``hallctl admin`` could still repair it, but only with a shell on the machine).
        """
        acc = await self._account(name)
        if name == actor:
            raise Refused(
                "own_account", "不能修改自己的角色或停用自己", "you cannot change your own role or disable yourself"
            )
        if role is not None and role not in ADMIN_ROLES:
            raise Refused("unknown_role", f"未知角色 {role}", f"unknown role {role!r}; one of {', '.join(ADMIN_ROLES)}")
        loses_admin = (
            acc.role == "hall_admin"
            and acc.disabled_at is None
            and ((role is not None and role != "hall_admin") or disabled is True)
        )
        if loses_admin:
            admins = [a for a in await self.store.admin_accounts() if a.role == "hall_admin" and a.disabled_at is None]
            if len(admins) <= 1:
                raise Conflict("last_admin", "这是最后一个可用的大厅管理员账号", "this is the last enabled hall admin")
        if role is not None and role != acc.role:
            await self.set_role(name, role, actor)
        if disabled is not None and disabled != (acc.disabled_at is not None):
            when = self.clock().isoformat() if disabled else None
            action = "account.disable" if disabled else "account.enable"
            await self.store.update_admin_account(
                name,
                {"disabled_at": when},
                (self.clock(), actor, action, {"disabled_at": acc.disabled_at}, {"disabled_at": when}),
            )
            if disabled:  # its open sessions end now, not at their idle timeout
                self.sessions = {k: v for k, v in self.sessions.items() if v.name != name}
        return (await self._account(name)).public()

    async def unlock(self, name: str, actor: str) -> None:
        acc = await self._account(name)
        await self.store.update_admin_account(
            name,
            {"failures": 0, "locked_until": None},
            (self.clock(), actor, "account.unlock", {"locked_until": acc.locked_until}, {"locked_until": None}),
        )

    async def _account(self, name: str) -> AdminAccount:
        acc = await self.store.admin_account(name)
        if acc is None:
            raise Refused("unknown_account", f"没有账号 {name}", f"no account {name}")
        return acc

    # ---- login -----------------------------------------------------------------------------

    async def login(self, name: str, password: str) -> tuple[str, Session] | str:
        """A new session (id, session), or a TOTP challenge id when the account has a second factor."""
        now = self.clock()
        acc = await self.store.admin_account(name)
        if acc is not None and acc.locked_until is not None and datetime.fromisoformat(acc.locked_until) > now:
            await self.store.audit(now, name, "login.refused", f"account:{name}", None, {"reason": "locked"})
            raise self._locked(acc.locked_until)
        async with self.hash_slot:
            ok = await asyncio.to_thread(_check_password, acc.password_hash if acc else None, password)
        if acc is None or not ok or acc.disabled_at is not None:
            await self._failed(acc, name, "password")
            raise Unauthorized("bad_credentials", "账号或密码错误", "wrong account name or password")
        if acc.totp_enabled:
            challenge = secrets.token_urlsafe(24)
            self._expire()
            self.challenges[challenge] = _Challenge(name, now + timedelta(seconds=CHALLENGE_S))
            return challenge
        return await self._open(acc)

    async def login_totp(self, challenge: str, code: str) -> tuple[str, Session]:
        self._expire()
        ch = self.challenges.get(challenge)
        if ch is None:
            raise Unauthorized(
                "login_expired", "登录已超时，请重新输入密码", "the login has expired; enter the password again"
            )
        acc = await self._account(ch.name)
        now = self.clock()
        if acc.locked_until is not None and datetime.fromisoformat(acc.locked_until) > now:
            self.challenges.pop(challenge, None)
            raise self._locked(acc.locked_until)
        step = _totp_step(acc.totp_secret, code, now) if acc.totp_secret else None
        if step is None or step <= self.totp_last_step.get(acc.name, -1):
            await self._failed(acc, acc.name, "totp")
            if (await self._account(acc.name)).locked_until is not None:
                self.challenges.pop(challenge, None)
            raise Unauthorized("bad_totp", "动态验证码错误", "wrong one-time code")
        self.challenges.pop(challenge, None)
        self.totp_last_step[acc.name] = step  # a code seen once is never accepted again (replay)
        return await self._open(acc)

    def _locked(self, until: str) -> AccountLocked:
        local = datetime.fromisoformat(until).astimezone(self.cfg.hall.tz).strftime("%H:%M")
        return AccountLocked(
            "account_locked",
            f"登录失败次数过多，账号已锁定至 {local}",
            f"too many failed logins; the account is locked until {local}",
            {"locked_until": until},
        )

    async def _failed(self, acc: AdminAccount | None, name: str, step: str) -> None:
        now = self.clock()
        if acc is None:
            await self.store.audit(now, name[:64], "login.failed", f"account:{name[:64]}", None, {"step": step})
            return
        failures = acc.failures + 1
        fields: dict[str, Any] = {"failures": failures}
        after: dict[str, Any] = {"step": step, "failures": failures}
        if failures >= self.cfg.admin.lockout_failures:
            until = (now + timedelta(minutes=self.cfg.admin.lockout_minutes)).isoformat()
            fields |= {"locked_until": until, "failures": 0}
            after["locked_until"] = until
        await self.store.update_admin_account(name, fields, (now, name, "login.failed", None, after))

    async def _open(self, acc: AdminAccount) -> tuple[str, Session]:
        now = self.clock()
        await self.store.update_admin_account(
            acc.name, {"failures": 0, "locked_until": None}, (now, acc.name, "login", None, {"role": acc.role})
        )
        sid = secrets.token_urlsafe(32)
        s = Session(acc.name, acc.role, secrets.token_urlsafe(24), now, now, acc.totp_enabled)
        self._expire()
        self.sessions[_digest(sid)] = s
        return sid, s

    def _expire(self) -> None:
        now = self.clock()
        idle = timedelta(minutes=self.cfg.admin.session_idle_minutes)
        most = timedelta(hours=self.cfg.admin.session_max_hours)
        self.sessions = {k: s for k, s in self.sessions.items() if now - s.last_seen < idle and now - s.created < most}
        self.challenges = {k: c for k, c in self.challenges.items() if c.expires > now}

    def session(self, sid: str | None) -> Session:
        """The live session of this cookie value (touching it), or 401."""
        if not sid:
            raise Unauthorized("not_logged_in", "请先登录", "please log in")
        self._expire()
        s = self.sessions.get(_digest(sid))
        if s is None:
            raise Unauthorized("session_expired", "登录已过期，请重新登录", "the session has expired; log in again")
        s.last_seen = self.clock()
        return s

    async def logout(self, sid: str) -> None:
        s = self.sessions.pop(_digest(sid), None)
        if s is not None:
            await self.store.audit(self.clock(), s.name, "logout", f"account:{s.name}")

    def require_edit(self, s: Session) -> None:
        if not s.may_edit():
            raise Forbidden("forbidden", "只有大厅管理员可以修改", "only a hall admin may change this")
        if self.cfg.admin.require_totp and not s.totp_enabled:
            raise Forbidden("totp_required", "请先启用动态验证码（双因素认证）", "enrol a TOTP second factor first")

    # ---- TOTP enrolment ----------------------------------------------------------------------

    def totp_offer(self, s: Session) -> tuple[str, str]:
        """A new secret and its otpauth:// URI for the authenticator app (active once confirmed)."""
        import pyotp

        secret = pyotp.random_base32()
        self.pending_totp[s.name] = secret
        uri = pyotp.TOTP(secret).provisioning_uri(name=s.name, issuer_name=f"hallctl {self.cfg.hall.id}")
        return secret, uri

    async def totp_confirm(self, s: Session, code: str) -> None:
        import pyotp

        secret = self.pending_totp.get(s.name)
        if secret is None or not pyotp.TOTP(secret).verify(code.strip(), for_time=self.clock(), valid_window=1):
            raise Refused("bad_totp", "动态验证码错误", "wrong one-time code")
        del self.pending_totp[s.name]
        await self.store.update_admin_account(
            s.name,
            {"totp_secret": secret, "totp_enabled": 1},
            (self.clock(), s.name, "account.totp", {"totp_enabled": s.totp_enabled}, {"totp_enabled": True}),
        )
        for other in self.sessions.values():
            if other.name == s.name:
                other.totp_enabled = True
