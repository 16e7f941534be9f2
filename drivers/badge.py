"""Staff badge reader at a window: a contactless PC/SC reader behind pcscd.

A staff member signs in by putting a badge on the reader and signs out by taking
it away, so the driver reports both edges: ``on_badge(uid)`` and ``on_removed()``.

pyscard is blocking, so every PC/SC call runs in a worker thread and the event
loop stays free. Waiting for a card uses ``SCardGetStatusChange`` with a short
timeout in a loop, and cancelling :meth:`BadgeReader.run` calls ``SCardCancel``
and waits for the thread, so shutdown is prompt and leaves no thread behind.
pcscd going away and the reader being unplugged both mean ``offline`` (the
detail says which); the shared :class:`~drivers.reconnect.Supervisor` brings
the reader back when they return.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar

from smartcard import scard
from smartcard.Exceptions import CardConnectionException, SmartcardException

from drivers.base import HealthCallback, HealthTracker
from drivers.errors import DeviceError, DeviceOffline, DeviceTimeout, FrameError
from drivers.reconnect import Backoff, SupervisedDriver, Supervisor

log = logging.getLogger(__name__)

T = TypeVar("T")

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]  # PC/SC part 3 pseudo-APDU: the card's UID

# Codes meaning the resource manager itself is gone or was restarted under us.
_PCSCD_GONE = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_F_COMM_ERROR,
        scard.SCARD_E_INVALID_HANDLE,  # a context from before a pcscd restart
        scard.SCARD_E_NO_READERS_AVAILABLE,
    }
)
_READER_GONE = frozenset({scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE})
_CARD_SILENT = frozenset({scard.SCARD_E_TIMEOUT, scard.SCARD_W_UNRESPONSIVE_CARD})
_ABSENT_FLAGS = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE | scard.SCARD_STATE_UNAVAILABLE


class BadStatusWord(FrameError):
    """The card answered get-UID with a status other than ``90 00`` (not a badge, or a fault)."""

    code = "bad_status_word"


class CardUnreadable(DeviceError):
    """The card left, or would not power up or talk, before its UID was read.

    vpcd, for one, answers ``SCardConnect`` with ``SCARD_W_SECURITY_VIOLATION``
    for a card that went away before its next presence poll noticed.
    """

    code = "card_unreadable"


class _Status(NamedTuple):
    state: int  # SCARD_STATE_* flags; the high 16 bits count insertions and removals
    changed: bool


def _check(hr: int, what: str) -> None:
    if hr != scard.SCARD_S_SUCCESS:
        raise SmartcardException(message=what, hresult=hr)


# --- blocking calls, run in a worker thread -------------------------------------------------


def _establish() -> int:
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _check(hr, "SCardEstablishContext")
    return int(ctx)


def _list_readers(ctx: int) -> list[str]:
    hr, readers = scard.SCardListReaders(ctx, [])
    if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    _check(hr, "SCardListReaders")
    return [str(r) for r in readers]


def _release(ctx: int) -> None:
    # A context from a pcscd that died cannot be released cleanly; nothing is left to free.
    scard.SCardReleaseContext(ctx)


def _wait_change(ctx: int, reader: str, known: int, timeout_ms: int) -> _Status:
    hr, states = scard.SCardGetStatusChange(ctx, timeout_ms, [(reader, known)])
    if hr == scard.SCARD_E_TIMEOUT:
        return _Status(known, changed=False)
    _check(hr, "SCardGetStatusChange")
    state = int(states[0][1])
    return _Status(state & ~scard.SCARD_STATE_CHANGED, changed=True)


def _transmit_get_uid(ctx: int, reader: str) -> tuple[bytes, int]:
    hr, card, protocol = scard.SCardConnect(
        ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    if hr != scard.SCARD_S_SUCCESS:
        raise CardConnectionException(message="SCardConnect", hresult=hr)
    try:
        hr, response = scard.SCardTransmit(card, protocol, GET_UID)
        if hr != scard.SCARD_S_SUCCESS:
            raise CardConnectionException(message="SCardTransmit", hresult=hr)
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    raw = bytes(response)
    if len(raw) < 2:
        return raw, -1
    return raw[:-2], raw[-2] << 8 | raw[-1]


# --- the driver -----------------------------------------------------------------------------


class BadgeReader(SupervisedDriver):
    """Watches one named reader and reports badges put on it and taken off it.

    ``on_removed`` follows only a reported ``on_badge``, so the daemon sees
    strictly paired sign-in/sign-out events. A badge that stays on the reader
    while pcscd restarts is not reported twice; one swapped meanwhile is
    reported as removed, then the new one.
    """

    kind: ClassVar[str] = "badge_reader"

    def __init__(
        self,
        name: str,
        reader_name: str,
        *,
        on_badge: Callable[[str], None],
        on_removed: Callable[[], None],
        on_health: HealthCallback | None = None,
        poll_timeout: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.reader_name = reader_name
        self._on_badge = on_badge
        self._on_removed = on_removed
        self._poll_ms = max(1, int(poll_timeout * 1000))
        self._health = HealthTracker(on_health)
        self._supervisor: Supervisor[int] = Supervisor(
            name, self._health, self._connect, self._serve, self._disconnect, backoff
        )
        self.current_uid: str | None = None  # the badge on the reader, as last reported
        self.last_error: DeviceError | None = None

    # run, health, counters, connected: SupervisedDriver

    @property
    def tracker(self) -> HealthTracker:
        """The tracker behind ``health()`` and ``counters``."""
        return self._health

    # -- plumbing: thread calls that can be cancelled ------------------------------------------

    async def _call(self, ctx: int | None, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in a thread; on cancellation wake it with SCardCancel and wait for it.

        Waiting matters: a thread still inside pcsc-lite after ``run()`` returned
        would hold the context and delay interpreter exit.
        """
        fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # SCardCancel only wakes a wait already in progress; the thread may not
            # have entered SCardGetStatusChange yet, so repeat until it is out.
            while not fut.done():
                if ctx is not None:
                    scard.SCardCancel(ctx)
                await asyncio.wait([fut], timeout=0.05)
            if not fut.cancelled():
                fut.exception()  # retrieved, so asyncio does not log it as lost
            raise

    def _offline(self, exc: SmartcardException) -> DeviceOffline:
        if exc.hresult in _READER_GONE:
            return DeviceOffline(self.name, f"reader {self.reader_name!r} not present")
        if exc.hresult in _PCSCD_GONE:
            return DeviceOffline(self.name, f"pcscd not running ({exc})")
        return DeviceOffline(self.name, f"PC/SC failure: {exc}")

    # -- Supervisor hooks ----------------------------------------------------------------------

    async def _connect(self) -> int:
        try:
            ctx = await self._call(None, _establish)
        except SmartcardException as exc:
            raise DeviceOffline(self.name, f"pcscd not running ({exc})") from exc
        try:
            readers = await self._call(ctx, _list_readers, ctx)
        except SmartcardException as exc:
            await self._disconnect(ctx)
            raise self._offline(exc) from exc
        if self.reader_name not in readers:
            await self._disconnect(ctx)
            raise DeviceOffline(
                self.name,
                f"reader {self.reader_name!r} not present (pcscd lists {readers or 'none'})",
            )
        return ctx

    async def _disconnect(self, ctx: int) -> None:
        await self._call(None, _release, ctx)

    async def _serve(self, ctx: int) -> None:
        known = scard.SCARD_STATE_UNAWARE
        handled_insertion: int | None = None  # event counter of the insertion already read
        fresh = True  # first state seen on this context (after start or a reconnect)
        while True:
            try:
                status = await self._call(ctx, _wait_change, ctx, self.reader_name, known, self._poll_ms)
            except SmartcardException as exc:
                raise self._offline(exc) from exc
            if not status.changed:
                continue
            known = status.state
            log.debug("%s: reader state 0x%08X", self.name, known)
            if known & _ABSENT_FLAGS:
                raise DeviceOffline(self.name, f"reader {self.reader_name!r} not present")
            self._health.set("ok")
            if known & scard.SCARD_STATE_PRESENT:
                insertion = known >> 16
                if insertion != handled_insertion:
                    handled_insertion = insertion
                    await self._card_arrived(ctx, same_badge_may_stay=fresh)
            elif known & scard.SCARD_STATE_EMPTY:
                handled_insertion = None
                self._card_left()
            fresh = False

    # -- events --------------------------------------------------------------------------------

    async def _card_arrived(self, ctx: int, *, same_badge_may_stay: bool) -> None:
        try:
            uid: str | None = await self._read_uid(ctx)
        except (BadStatusWord, CardUnreadable, DeviceTimeout) as exc:
            self.last_error = exc
            log.warning("%s: no badge read: %s", self.name, exc.message)
            uid = None
        if self.current_uid is not None:
            if same_badge_may_stay and uid == self.current_uid:
                return
            self._card_left()
        if uid is not None:
            self.current_uid = uid
            self._on_badge(uid)

    def _card_left(self) -> None:
        if self.current_uid is not None:
            self.current_uid = None
            self._on_removed()

    async def _read_uid(self, ctx: int) -> str:
        counters = self._health.counters
        try:
            data, sw = await self._call(ctx, _transmit_get_uid, ctx, self.reader_name)
        except CardConnectionException as exc:
            if exc.hresult in _PCSCD_GONE or exc.hresult in _READER_GONE:
                raise self._offline(exc) from exc
            if exc.hresult in _CARD_SILENT:
                counters.timeouts += 1
                raise DeviceTimeout(self.name, f"card did not answer get-UID ({exc})") from exc
            # Anything else is this card's problem, not the reader's: the next
            # status change shows whether the reader itself is still there.
            counters.bad_frames += 1
            raise CardUnreadable(self.name, f"card not readable ({exc})") from exc
        if sw != 0x9000 or not data:
            counters.bad_frames += 1
            raise BadStatusWord(self.name, f"get-UID refused with SW {sw & 0xFFFF:04X}")
        return data.hex().upper()
