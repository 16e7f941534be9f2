"""Personal data handling (个人信息保护法): masking, hashing, opaque QR tokens.

Masks come from ``drivers.idnumber`` so the card reader, logs and the daemon
agree on one form (张*丰, 1101**********1234). ID numbers used for the per-ID
limit are stored only as a keyed hash, so the tickets table never holds them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

from drivers.idnumber import mask_id, mask_name

__all__ = ["QrSigner", "id_hash", "mask_id", "mask_name"]


def id_hash(secret: bytes, id_number: str) -> str:
    return hmac.new(secret, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class QrTokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class QrSigner:
    """Signs the ticket QR: ``T1.<payload>.<mac>``, ASCII only, expiring, no personal data."""

    def __init__(self, secret: bytes, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        # The keyed HMAC state, copied per token: hmac.digest (OpenSSL's one-shot HMAC) releases the
        # GIL around every call however short the message, so on the event loop each ticket's QR
        # handed the GIL to the store's writer thread and waited to get it back (issue 12's profile:
        # 10 % of the loop thread's samples in hmac.digest, 55 µs of wall time per call beside a busy
        # thread against 1 µs for a copy). A copied HMAC object keeps the GIL for short messages.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        self._ttl = ttl_s
        self._clock = clock  # the hall's clock, so signing and verifying agree on "now"

    def _mac(self, payload: str) -> bytes:
        h = self._keyed.copy()
        h.update(payload.encode())
        return h.digest()[:12]

    def sign(self, ticket_id: str, now: float | None = None) -> str:
        exp = int((now if now is not None else self._clock()) + self._ttl)
        payload = _b64(f"{ticket_id}|{exp}".encode())
        mac = _b64(self._mac(payload))
        return f"T1.{payload}.{mac}"

    def sign_until(self, subject: str, expires: float) -> str:
        """A token for ``subject`` valid until ``expires`` (an appointment's QR: valid until its slot ends)."""
        payload = _b64(f"{subject}|{int(expires)}".encode())
        mac = _b64(self._mac(payload))
        return f"T1.{payload}.{mac}"

    def verify(self, token: str, now: float | None = None) -> str:
        try:
            version, payload, mac = token.split(".")
        except ValueError as exc:
            raise QrTokenError("bad_qr_token", "not a hallctl ticket code") from exc
        if version != "T1":
            raise QrTokenError("bad_qr_token", "unknown ticket code version")
        if not (payload.isascii() and mac.isascii()):  # compare_digest refuses non-ASCII str
            raise QrTokenError("bad_qr_token", "not a hallctl ticket code")
        want = _b64(self._mac(payload))
        if not hmac.compare_digest(want.encode(), mac.encode()):
            raise QrTokenError("bad_qr_token", "ticket code signature does not match")
        try:
            ticket_id, exp = _unb64(payload).decode().rsplit("|", 1)
            expires = int(exp)
        except (ValueError, UnicodeDecodeError) as exc:
            raise QrTokenError("bad_qr_token", "ticket code is damaged") from exc
        if (now if now is not None else self._clock()) > expires:
            raise QrTokenError("expired_qr_token", "ticket code has expired")
        return ticket_id
