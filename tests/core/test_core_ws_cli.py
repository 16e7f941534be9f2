"""The /ws WebSocket of an in-process hall, and the store-side CLI commands run as processes.

The WebSocket tests use the ``websockets`` client against a hall on port 0 with a fake
clock. The CLI tests script a day through an in-process hall, then run
``python -m hallctl.cli -c FILE ...`` on the same SQLite file (the daemon need not run).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hallctl.engine import Holder, Ticket
from hallctl.service import HallService
from tests.core.core_helpers import REPO, FakeClock, LiveHall, config_dict, to_toml


async def called(svc: HallService, window: int) -> Ticket:
    """call-next at ``window``, which must find someone."""
    t = await svc.call_next(window)
    assert t is not None, f"window {window} found nobody to call"
    return t


WAIT = 20  # seconds: the bound on every wait for a message or a process

# ---- helpers ------------------------------------------------------------------------------------------


def ws_url(live: LiveHall, token: str | None = None) -> str:
    url = f"ws://127.0.0.1:{live.hall.api.port}/ws"
    return url if token is None else f"{url}?token={token}"


async def recv_json(ws: Any) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(await ws.recv())
    return msg


async def read_snapshot(ws: Any, live: LiveHall) -> list[dict[str, Any]]:
    """The retained state the socket sends first: one message per snapshot event of the service."""
    return [await recv_json(ws) for _ in live.svc.snapshot()]


async def until_event(ws: Any, name: str) -> dict[str, Any]:
    while True:
        msg = await recv_json(ws)
        if msg["event"] == name:
            data: dict[str, Any] = msg["data"]
            return data


def write_config(tmp_path: Path, live: LiveHall, **over: Any) -> Path:
    """A TOML file for the CLI naming the in-process hall's database (the same settings as the hall)."""
    path = tmp_path / "hallctl-cli.toml"
    data = config_dict(store={"path": str(live.hall.cfg.store.path)}, **over)
    path.write_text(to_toml(data), encoding="utf-8")
    return path


async def cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hallctl.cli -c FILE ARGS`` in a thread, so the in-process hall keeps answering meanwhile."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hallctl.cli", "-c", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def sql(db: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        with conn:
            return conn.execute(query, params).fetchall()
    finally:
        conn.close()


# ---- /ws ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["query", "header"])
async def test_ws_sends_snapshot_then_live_ticket_called(live: LiveHall, how: str) -> None:
    """a display token gets queue_state/window_state first (no old call replayed), then a live ticket_called."""
    await live.svc.issue("A")
    await live.svc.call_next(1)  # A001 called before the screen connects: state, not a replayed call
    await live.svc.issue("A")
    token = live.tokens["display"]
    if how == "query":
        connect = websockets.connect(ws_url(live, token))
    else:
        connect = websockets.connect(ws_url(live), additional_headers={"Authorization": f"Bearer {token}"})
    async with asyncio.timeout(WAIT), connect as ws:
        snapshot = await read_snapshot(ws, live)
        assert all(set(m) == {"event", "data"} for m in snapshot)
        assert [m["event"] for m in snapshot] == ["queue_state"] * 3 + ["window_state"] * 3
        queues = {m["data"]["category"]: m["data"] for m in snapshot if m["event"] == "queue_state"}
        assert queues["A"]["waiting"] == 1 and queues["A"]["last_called"] == "A001"
        windows = {m["data"]["window"]: m["data"] for m in snapshot if m["event"] == "window_state"}
        assert windows[1]["state"] == "called" and windows[1]["ticket"] == "A001"
        assert windows[2]["state"] == "idle" and windows[2]["ticket"] is None

        resp = await live.client.post("/api/v1/windows/2/call-next", headers=live.auth("w2"))
        assert resp.status_code == 200, resp.text
        called = await until_event(ws, "ticket_called")
    assert called["number"] == "A002" and called["window"] == 2 and called["recall"] == 0
    assert called["announcement"] == "请A002号到2号窗口办理"


@pytest.mark.parametrize("token", ["hct_not-a-token", ""])
async def test_ws_unknown_token_gets_nothing(live: LiveHall, token: str) -> None:
    """an unknown or empty token is refused before any message: no snapshot reaches the client."""
    await live.svc.issue("A")
    async with asyncio.timeout(WAIT):
        try:
            async with websockets.connect(ws_url(live, token)) as ws:
                first = await ws.recv()
        except InvalidStatus as exc:  # refused in the handshake
            assert exc.response.status_code in (401, 403)
        except ConnectionClosed as exc:  # or accepted and closed at once
            assert exc.rcvd is not None and exc.rcvd.code == 4401
        else:
            pytest.fail(f"a bad token received {first!r}")


async def test_ws_unknown_token_closed_with_4401(live: LiveHall) -> None:
    """an unknown token is closed with WebSocket close code 4401, as docs/api.md promises."""
    async with asyncio.timeout(WAIT):
        try:
            async with websockets.connect(ws_url(live, "hct_not-a-token")) as ws:
                await ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        except InvalidStatus as exc:
            code = exc.response.status_code  # the handshake was rejected with an HTTP status instead
    assert code == 4401


async def test_ws_revoked_token_is_refused(live: LiveHall) -> None:
    """a display token that was revoked no longer opens the socket."""
    rows = [t for t in await live.hall.store.tokens() if t.role == "display"]
    assert await live.hall.ctx.auth.revoke(rows[0].id)
    async with asyncio.timeout(WAIT):
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            async with websockets.connect(ws_url(live, live.tokens["display"])) as ws:
                await ws.recv()


async def test_ws_closed_with_1012_when_hall_stops(live: LiveHall) -> None:
    """an open socket is closed with 1012 (service restart) when the hall stops, so screens reconnect."""
    async with asyncio.timeout(WAIT), websockets.connect(ws_url(live, live.tokens["display"])) as ws:
        await read_snapshot(ws, live)
        assert live.hall.api.app is not None and not live.hall.api.app.state.closing.is_set()
        await live.hall.stop()
        assert live.hall.api.app.state.closing.is_set()
        with pytest.raises(ConnectionClosed) as exc:
            while True:  # any event still queued may arrive first; then the close
                await ws.recv()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 1012


# ---- CLI: stats ------------------------------------------------------------------------------------------


async def script_day(live: LiveHall, clock: FakeClock) -> None:
    """A scripted morning (times are Asia/Shanghai on 2026-11-23; targets A 10 min, B 15 min)."""
    svc = live.svc
    await svc.sign_in(1, "0231")
    for cat in ("A", "A", "A", "B", "C"):  # 09:00 A001 A002 A003 B001 C001
        await svc.issue(cat)
    clock.advance(minutes=1)
    await svc.cancel("20261123-C001")  # 09:01
    clock.advance(minutes=3)
    assert (await called(svc, 1)).number == "A001"  # 09:04, wait 240 s (within 10 min)
    await svc.start_service(1)
    clock.advance(minutes=6)
    await svc.finish(1)  # 09:10, service 360 s
    await svc.evaluate(1, 4, "pad")
    assert (await called(svc, 3)).number == "B001"  # 09:10, wait 600 s (within 15 min)
    clock.advance(minutes=2)
    await svc.finish(3)  # 09:12, service 120 s from the call
    await svc.evaluate(3, 2, "pad")  # 差评
    assert (await called(svc, 1)).number == "A002"  # 09:12, wait 720 s (over 10 min)
    clock.advance(minutes=8)
    await svc.finish(1)  # 09:20, service 480 s
    await svc.evaluate(1, None, "timeout")  # 未评价, as the pad timeout records it
    await svc.issue("A")  # 09:20 A004, still waiting at the end
    assert (await called(svc, 2)).number == "A003"  # 09:20, wait 1200 s
    await svc.no_show(2)


async def test_cli_stats_json_matches_scripted_day(live: LiveHall, clock: FakeClock, tmp_path: Path) -> None:
    """`hallctl stats --date D --json` on the stopped hall's database gives the scripted day's figures."""
    await script_day(live, clock)
    await live.hall.stop()
    cfg = write_config(tmp_path, live)
    proc = await cli(cfg, "stats", "--date", "2026-11-23", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["day"] == "2026-11-23" and out["hall"] == "test"
    total = out["total"]
    assert total == {
        "issued": 6,
        "called": 4,
        "done": 3,
        "no_show": 1,
        "no_show_rate": 0.25,
        "avg_wait_s": 690.0,
        "p50_wait_s": 720.0,
        "p90_wait_s": 1200.0,
        "avg_service_s": 320.0,
        "service_level": 0.5,
        "evaluations": 2,
        "unrated": 1,
        "satisfaction": 0.5,
        "bad_evaluations": 1,
    }
    cats = out["by_category"]
    assert {k: v["issued"] for k, v in cats.items()} == {"A": 4, "B": 1, "C": 1}
    assert cats["A"]["service_level"] == pytest.approx(1 / 3, abs=0.001) and cats["B"]["service_level"] == 1.0
    assert cats["C"]["called"] == 0 and cats["C"]["service_level"] is None
    wins = out["by_window"]
    assert {k: (v["done"], v["no_show"]) for k, v in wins.items()} == {"1": (2, 0), "2": (0, 1), "3": (1, 0)}
    assert (wins["1"]["evaluations"], wins["1"]["unrated"], wins["1"]["satisfaction"]) == (1, 1, 1.0)
    assert wins["3"]["bad_evaluations"] == 1 and wins["3"]["satisfaction"] == 0.0
    assert out["by_staff"]["0231"]["done"] == 2
    assert list(out["by_hour"]) == ["09"] and out["by_hour"]["09"]["issued"] == 6

    # What a person reads: Chinese by default, durations in minutes, a dash where nothing was
    # counted (never "None"), one line per window and per staff member, by name.
    text = await cli(cfg, "stats", "--date", "2026-11-23")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "测试政务服务中心 2026-11-23"
    assert "取号 6，办结 3，过号 1，平均等候 11分30秒，90%等候 20分00秒，等候达标率 50%" in lines[1]
    assert "好评率 50%（已评价 2，未评价 1）" in lines[1]
    assert any(line.startswith("  C 公安户政：取号 1") and "等候达标率 —" in line for line in lines)
    assert any(line.startswith("  1号窗口：叫号 2，办结 2") and "平均办理 7分00秒" in line for line in lines)
    assert any(line.startswith("  2号窗口：") and "过号 1" in line for line in lines)
    assert any(line.startswith("  李明：叫号 2") for line in lines)
    assert "None" not in text.stdout
    english = await cli(cfg, "stats", "--date", "2026-11-23", "--lang", "en")
    assert english.returncode == 0, english.stderr
    assert "issued 6, done 3, no-show 1, avg wait 11 min 30 s" in english.stdout
    assert "  window 1: called 2, done 2" in english.stdout and "None" not in english.stdout
    empty = await cli(cfg, "stats", "--date", "2026-11-22")
    assert empty.stdout.splitlines()[-1] == "  当天没有取号" and "None" not in empty.stdout
    other = await cli(cfg, "stats", "--date", "2026-11-22", "--json")
    assert other.returncode == 0 and json.loads(other.stdout)["total"]["issued"] == 0


# ---- CLI: purge ------------------------------------------------------------------------------------------

HOLDERS = [
    Holder(name="欧阳建国", id_number="11010119500101123X"),
    Holder(name="张三丰", id_number="110101198001011234"),
]


async def test_cli_purge_deletes_old_holders_keeps_counts(live: LiveHall, tmp_path: Path) -> None:
    """`hallctl purge` deletes holder rows older than privacy.retention_days, keeps tickets and stats."""
    old = (await live.svc.issue("A", holder=HOLDERS[0])).ticket
    recent = (await live.svc.issue("A", holder=HOLDERS[1])).ticket
    await live.svc.issue("B")
    await live.hall.stop()
    db = str(live.hall.cfg.store.path)
    # The purge compares with the real clock: backdate one visit to 31 days ago, the other to 29 days ago.
    now = datetime.now(UTC)
    for ticket, age in ((old, 31), (recent, 29)):
        when = (now - timedelta(days=age)).isoformat()
        sql(db, "UPDATE holders SET created_at = ? WHERE ticket_id = ?", when, ticket.id)
        sql(db, "UPDATE tickets SET issued_at = ? WHERE id = ?", when, ticket.id)
    cfg = write_config(tmp_path, live, privacy={"retention_days": 30})
    # The admin audit log is kept [admin] audit_retention_days (400 by default): an audited action, backdated past that.
    made = await cli(cfg, "token", "create", "--role", "display", "--label", "lobby")
    assert made.returncode == 0, made.stderr
    audited = sql(db, "SELECT COUNT(*) FROM audit_log")[0][0]
    assert audited > 0
    sql(db, "UPDATE audit_log SET at = ?", (now - timedelta(days=401)).isoformat())
    before = await cli(cfg, "stats", "--date", "2026-11-23", "--json")
    assert before.returncode == 0, before.stderr

    proc = await cli(cfg, "purge")
    assert proc.returncode == 0, proc.stderr
    assert "purged personal data of 1 tickets older than 30 days" in proc.stdout
    assert "deleted 0 resolved alerts and 0 closed cases older than 1095 days" in proc.stdout
    assert f"deleted {audited} audit rows older than 400 days" in proc.stdout
    assert sql(db, "SELECT action FROM audit_log") == [("audit.purge",)]  # the purge itself is on record
    assert sql(db, "SELECT ticket_id FROM holders") == [(recent.id,)]
    assert sql(db, "SELECT holder_masked, id_hash FROM tickets WHERE id = ?", old.id) == [(None, None)]
    assert sql(db, "SELECT holder_masked FROM tickets WHERE id = ?", recent.id) == [("张*丰",)]
    assert sql(db, "SELECT COUNT(*) FROM tickets") == [(3,)]
    after = await cli(cfg, "stats", "--date", "2026-11-23", "--json")
    assert json.loads(after.stdout)["total"] == json.loads(before.stdout)["total"]
    assert json.loads(after.stdout)["total"]["issued"] == 3


# ---- CLI: tokens -----------------------------------------------------------------------------------------


async def test_cli_token_list_shows_tokens_without_secrets(live: LiveHall, tmp_path: Path) -> None:
    """`hallctl token list` prints one JSON line per token with role and windows, never the token or its hash."""
    cfg = write_config(tmp_path, live)
    proc = await cli(cfg, "token", "list")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["role"], r["windows"]) for r in rows] == [
        ("admin", []),
        ("kiosk", []),
        ("display", []),
        ("guide", []),
        ("window", [1]),
        ("pad", [1]),
        ("window", [2]),
        ("pad", [2]),
        ("window", [3]),
        ("pad", [3]),
    ]
    assert all(set(r) == {"id", "role", "windows", "kiosks", "label", "created_at", "revoked_at"} for r in rows)
    assert all(r["revoked_at"] is None for r in rows)
    hashes = [h for (h,) in sql(str(live.hall.cfg.store.path), "SELECT hash FROM tokens")]
    for secret in [*live.tokens.values(), *hashes]:
        assert secret not in proc.stdout
    assert "hct_" not in proc.stdout


async def test_cli_token_revoke_makes_running_hall_answer_401(live: LiveHall, tmp_path: Path) -> None:
    """`hallctl token revoke ID` while the hall runs: that token gets 401 bad_token, the others still work."""
    cfg = write_config(tmp_path, live)
    listed = await cli(cfg, "token", "list")
    ids = {r["role"]: r["id"] for r in map(json.loads, listed.stdout.splitlines()) if r["role"] != "window"}
    get = live.client.get
    assert (await get("/api/v1/windows", headers=live.auth("kiosk"))).status_code == 200

    proc = await cli(cfg, "token", "revoke", str(ids["kiosk"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"revoked {ids['kiosk']}"
    resp = await get("/api/v1/windows", headers=live.auth("kiosk"))
    assert resp.status_code == 401 and resp.json()["code"] == "bad_token"
    issue = await live.client.post("/api/v1/tickets", json={"category": "A"}, headers=live.auth("kiosk"))
    assert issue.status_code == 401 and live.svc._q.tickets == {}
    assert (await get("/api/v1/windows", headers=live.auth("display"))).status_code == 200

    again = await cli(cfg, "token", "revoke", str(ids["kiosk"]))
    assert again.returncode == 1 and f"no active token {ids['kiosk']}" in again.stderr
    after = {r["id"]: r for r in map(json.loads, (await cli(cfg, "token", "list")).stdout.splitlines())}
    assert after[ids["kiosk"]]["revoked_at"] is not None and after[ids["display"]]["revoked_at"] is None
