"""The token cache: a revoked token stops working at once in its own process, within 50 ms from another.

``Authenticator.revoke`` clears its own cache; both it and ``revoke_token`` (what ``hallctl token revoke`` runs)
replace a marker file that the daemon looks at, at most every ``auth.REVOCATION_CHECK_S``; a
revocation that bypasses it (plain SQL) takes effect within the TTL. No sleeping: the cache
reads an injected clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hallctl import auth
from hallctl.errors import Unauthorized
from hallctl.store import Store


class Tick:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The daemon's store and a second one on the same file, as ``hallctl token ...`` would open."""
    daemon, cli = Store(str(tmp_path / "hall.db")), Store(str(tmp_path / "hall.db"))
    await daemon.open()
    await cli.open()
    yield daemon, cli
    await cli.close()
    await daemon.close()


async def _token_id(store: Store, label: str) -> int:
    rows = await auth.list_tokens(store)
    found: object = next(r["id"] for r in rows if r["label"] == label)
    assert isinstance(found, int)
    return found


async def test_revoked_by_another_process_stops_working_within_the_check_interval(stores: tuple[Store, Store]) -> None:
    daemon, cli = stores
    tick = Tick()
    authn = auth.Authenticator(daemon, auth.TokenCache(ttl=5.0, clock=tick))
    assert authn.revocation_check_s == auth.REVOCATION_CHECK_S == 0.05  # the bound docs/api.md states
    token = await auth.create_token(cli, "kiosk", label="k1")
    other = await auth.create_token(cli, "display", label="d1")
    assert (await authn.authenticate(token)).role == "kiosk"
    assert (await authn.authenticate(other)).role == "display"
    assert await auth.revoke_token(cli, await _token_id(cli, "k1"))  # the CLI's store, not the daemon's
    tick.now += auth.REVOCATION_CHECK_S
    with pytest.raises(Unauthorized):
        await authn.authenticate(token)  # the marker changed, the cache was dropped
    assert (await authn.authenticate(other)).role == "display"
    # A second revocation is noticed too (a new marker file each time, not only a new mtime).
    assert (await authn.authenticate(other)).role == "display"
    assert await auth.revoke_token(cli, await _token_id(cli, "d1"))
    tick.now += auth.REVOCATION_CHECK_S
    with pytest.raises(Unauthorized):
        await authn.authenticate(other)


async def test_the_marker_is_looked_at_once_per_interval_not_per_request(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the interval a revocation elsewhere may still be served from the cache; not after it."""
    daemon, cli = stores
    tick = Tick()
    authn = auth.Authenticator(daemon, auth.TokenCache(ttl=5.0, clock=tick))
    stats = 0
    real_stamp = auth._marker_stamp

    def counting_stamp(path: str) -> tuple[int, int]:
        nonlocal stats
        stats += 1
        return real_stamp(path)

    monkeypatch.setattr(auth, "_marker_stamp", counting_stamp)
    token = await auth.create_token(cli, "kiosk", label="k1")
    for _ in range(100):
        assert (await authn.authenticate(token)).role == "kiosk"
    assert stats == 1
    assert await auth.revoke_token(cli, await _token_id(cli, "k1"))
    tick.now += auth.REVOCATION_CHECK_S * 0.9
    assert (await authn.authenticate(token)).role == "kiosk"  # inside the documented bound
    tick.now += auth.REVOCATION_CHECK_S * 0.1
    with pytest.raises(Unauthorized):
        await authn.authenticate(token)
    assert stats == 2
    tick.now -= 10.0  # a clock that went back looks again rather than trusting a stamp from the future
    with pytest.raises(Unauthorized):
        await authn.authenticate(token)
    assert stats == 3


async def test_revoked_behind_its_back_stops_working_within_the_ttl(stores: tuple[Store, Store]) -> None:
    daemon, cli = stores
    tick = Tick()
    authn = auth.Authenticator(daemon, auth.TokenCache(ttl=5.0, clock=tick))
    token = await auth.create_token(cli, "kiosk", label="k1")
    p = await authn.authenticate(token)
    assert p.role == "kiosk"

    tick.now += 1.0
    token_id = await _token_id(cli, "k1")
    # SQL typed into sqlite3: no marker, so the daemon is not told.
    await cli.write(lambda c: c.execute("UPDATE tokens SET revoked_at = 'now' WHERE id = ?", (token_id,)))
    tick.now += 3.9  # 4.9 s after the cached read: still remembered
    assert (await authn.authenticate(token)).role == "kiosk"
    tick.now += 0.1  # 5 s after it: read again, and refused
    with pytest.raises(Unauthorized):
        await authn.authenticate(token)
    tick.now += 100.0
    with pytest.raises(Unauthorized):  # refusals are not cached as anything but refusals
        await authn.authenticate(token)


async def test_revoked_in_process_stops_working_at_once(stores: tuple[Store, Store]) -> None:
    daemon, _ = stores
    tick = Tick()
    authn = auth.Authenticator(daemon, auth.TokenCache(ttl=5.0, clock=tick))
    keep = await auth.create_token(daemon, "display", label="screen")
    drop = await auth.create_token(daemon, "window", (1,), label="w1")
    assert (await authn.authenticate(drop)).windows == (1,)
    assert (await authn.authenticate(keep)).role == "display"
    assert await authn.revoke(await _token_id(daemon, "w1"))
    with pytest.raises(Unauthorized):
        await authn.authenticate(drop)
    assert (await authn.authenticate(keep)).role == "display"


async def test_cached_reads_skip_the_database_and_unknown_tokens_are_not_cached(
    stores: tuple[Store, Store],
) -> None:
    daemon, cli = stores
    tick = Tick()
    authn = auth.Authenticator(daemon, auth.TokenCache(ttl=5.0, clock=tick))
    token = await auth.create_token(daemon, "guide", label="g")
    await authn.authenticate(token)
    reads = 0
    real_read = daemon.read

    async def counting_read(fn):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return await real_read(fn)

    daemon.read = counting_read  # type: ignore[method-assign]
    for _ in range(10):
        assert (await authn.authenticate(token)).role == "guide"
    assert reads == 0
    # A token created by another process after a failed attempt works on its next request.
    late = "hct_" + "x" * 43
    with pytest.raises(Unauthorized):
        await authn.authenticate(late)
    await cli.write(
        lambda c: c.execute(
            "INSERT INTO tokens (hash, role, windows, label, created_at) VALUES (?,?,?,?,?)",
            (auth._hash(late), "kiosk", "[]", "late", "2026-01-01T00:00:00+00:00"),
        )
    )
    assert (await authn.authenticate(late)).role == "kiosk"
    assert reads == 2


def test_cache_stays_bounded() -> None:
    tick = Tick()
    cache = auth.TokenCache(ttl=5.0, clock=tick, max_entries=3)
    for i in range(10):
        cache.put(f"h{i}", auth.Principal("kiosk", token_id=i))
    assert len(cache._entries) <= 3 and cache.get("h9") is not None
    tick.now += 5.0
    assert cache.get("h9") is None
