"""The admin console's core: accounts, session cookies, CSRF, lockout, TOTP, the audit chain, live edits.

Against a real hall in this process (FakeClock, real SQLite, real HTTP on loopback) whose
config is a TOML file with comments, so the write-back is checked on the file itself.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest

from hallctl import config
from hallctl.daemon import Hall
from hallctl.errors import Conflict
from tests.core.core_helpers import REPO, FakeClock, config_dict, to_toml

HEADER = "# 测试大厅的配置 (a comment the console must keep)\n# second line of the header\n\n"
PASSWORD = "correct horse battery"


@dataclass
class Console:
    hall: Hall
    client: httpx.AsyncClient
    clock: FakeClock
    path: Path

    async def login(self, name: str = "boss", password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/api/v1/admin/login", json={"name": name, "password": password})

    def csrf(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.client.cookies.get("hallctl_csrf") or ""}

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hallctl.cli", "-c", str(self.path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            input=stdin,
        )


def write_config(tmp_path: Path, **over: object) -> Path:
    data = config_dict(store={"path": str(tmp_path / "hall.db")}, **over)
    text = to_toml(data).replace("[[window]]\n", "# 窗口 windows\n[[window]]\n", 1)
    text = text.replace('"categories" = ', "categories = ")
    path = tmp_path / "hallctl.toml"
    path.write_text(HEADER + text, encoding="utf-8")
    return path


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    path = write_config(tmp_path)
    clock = FakeClock()
    hall = Hall(config.load(path), clock=clock, state_dir=tmp_path / "state", config_path=path)
    await hall.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hall.api.port}", timeout=20)
    try:
        await hall.admin.add_account("boss", "hall_admin", PASSWORD, "test")
        await hall.admin.add_account("viewer", "readonly", PASSWORD, "test")
        yield Console(hall, client, clock, path)
    finally:
        await client.aclose()
        await hall.stop()


async def test_login_sets_a_strict_httponly_cookie_and_writes_need_the_csrf_header(console: Console) -> None:
    bad = await console.login(password="wrong password!")
    assert bad.status_code == 401 and bad.json()["code"] == "bad_credentials"
    ok = await console.login()
    assert ok.status_code == 200, ok.text
    cookies = ok.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("hallctl_admin="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session  # plain HTTP
    assert ok.json()["role"] == "hall_admin"
    assert (await console.client.get("/api/v1/admin/me")).json()["name"] == "boss"

    no_csrf = await console.client.put("/api/v1/admin/config/window/1", json={"name": "一号"})
    assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "csrf"
    wrong = await console.client.put(
        "/api/v1/admin/config/window/1", json={"name": "一号"}, headers={"X-CSRF-Token": "forged"}
    )
    assert wrong.status_code == 403
    assert console.hall.service.window_state(1).name == "1号窗口"

    out = await console.client.post("/api/v1/admin/logout", headers=console.csrf())
    assert out.status_code == 200
    console.client.cookies.clear()
    assert (await console.client.get("/api/v1/admin/me")).status_code == 401


async def test_a_bearer_token_is_not_a_console_session(console: Console) -> None:
    from hallctl import auth

    token = await auth.create_token(console.hall.store, "admin")
    r = await console.client.get("/api/v1/admin/config", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["code"] == "not_logged_in"


async def test_sessions_end_when_idle_and_at_the_absolute_limit(console: Console) -> None:
    assert (await console.login()).status_code == 200
    console.clock.advance(minutes=29)
    assert (await console.client.get("/api/v1/admin/me")).status_code == 200
    console.clock.advance(minutes=31)
    r = await console.client.get("/api/v1/admin/me")
    assert r.status_code == 401 and r.json()["code"] == "session_expired"

    assert (await console.login()).status_code == 200
    for _ in range(12 * 3 - 1):  # a request every 20 minutes keeps it alive until 12 hours
        console.clock.advance(minutes=20)
        assert (await console.client.get("/api/v1/admin/me")).status_code == 200
    console.clock.advance(minutes=20)
    assert (await console.client.get("/api/v1/admin/me")).status_code == 401


async def test_lockout_after_repeated_failures_then_release(console: Console) -> None:
    for _ in range(5):
        assert (await console.login(password="not the password")).status_code == 401
    locked = await console.login()
    assert locked.status_code == 423
    body = locked.json()
    assert body["code"] == "account_locked" and "锁定" in body["detail"] and "locked" in body["detail_en"]
    console.clock.advance(minutes=16)
    assert (await console.login()).status_code == 200
    actions = [r.action for r in await console.hall.store.audit_rows()]
    assert actions.count("login.failed") == 5 and "login.refused" in actions and actions[-1] == "login"


async def test_totp_enrolment_and_the_second_step(console: Console) -> None:
    assert (await console.login()).status_code == 200
    offer = (await console.client.post("/api/v1/admin/totp/enroll", headers=console.csrf())).json()
    assert offer["uri"].startswith("otpauth://totp/") and "<svg" in offer["qr_svg"]
    totp = pyotp.TOTP(offer["secret"])
    now = console.clock()
    r = await console.client.post("/api/v1/admin/totp/confirm", json={"code": totp.at(now)}, headers=console.csrf())
    assert r.status_code == 200 and r.json()["totp_enabled"] is True
    console.client.cookies.clear()

    step1 = await console.login()
    assert step1.json()["totp_required"] is True and "hallctl_admin" not in step1.cookies
    challenge = step1.json()["challenge"]
    wrong = await console.client.post("/api/v1/admin/login/totp", json={"challenge": challenge, "code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "bad_totp"
    ok = await console.client.post("/api/v1/admin/login/totp", json={"challenge": challenge, "code": totp.at(now)})
    assert ok.status_code == 200 and ok.json()["name"] == "boss"

    # The same code again (seen over a shoulder, or replayed) is refused, even with the password.
    console.client.cookies.clear()
    again = (await console.login()).json()["challenge"]
    replay = await console.client.post("/api/v1/admin/login/totp", json={"challenge": again, "code": totp.at(now)})
    assert replay.status_code == 401 and replay.json()["code"] == "bad_totp"
    console.clock.advance(seconds=30)
    fresh = totp.at(console.clock())
    ok = await console.client.post("/api/v1/admin/login/totp", json={"challenge": again, "code": fresh})
    assert ok.status_code == 200


async def test_live_window_edit_is_validated_applied_and_written_back_with_comments(console: Console) -> None:
    before_text = console.path.read_text(encoding="utf-8")
    assert (await console.login()).status_code == 200
    seen: list[str] = []

    async def on_event(e: object) -> None:
        seen.append(type(e).__name__)

    from hallctl import events as ev

    console.hall.bus.subscribe("test.config", on_event, (ev.ConfigChanged,))
    r = await console.client.put(
        "/api/v1/admin/config/window/1", json={"name": "1号窗口 综合", "categories": ["A", "B"]}, headers=console.csrf()
    )
    assert r.status_code == 200, r.text
    state = console.hall.service.window_state(1)
    assert state.name == "1号窗口 综合" and state.categories == ("A", "B")
    new_cfg = console.hall.service.cfg
    assert console.hall.ctx.cfg is new_cfg and console.hall.supervision.cfg is new_cfg
    # (This hall has no [[climate_zone]], so there is no climate controller to hand it to.)
    await console.hall.bus.drain()
    assert seen == ["ConfigChanged"]

    after_text = console.path.read_text(encoding="utf-8")
    expected = before_text.replace(
        'number = 1\ncategories = ["A"]', 'number = 1\ncategories = ["A", "B"]\nname = "1号窗口 综合"', 1
    )
    assert after_text == expected  # comments, order and every other line as they were
    assert config.load(console.path) == console.hall.service.cfg
    check = console.cli("check-config")
    assert check.returncode == 0, check.stderr

    rows = await console.hall.store.audit_rows()
    edit = rows[-1]
    assert (edit.actor, edit.action, edit.target) == ("boss", "config.window.update", "window:1")
    assert edit.before["categories"] == ["A"] and edit.after["categories"] == ["A", "B"]


async def test_an_invalid_edit_names_the_key_and_changes_nothing(console: Console) -> None:
    before_text = console.path.read_text(encoding="utf-8")
    assert (await console.login()).status_code == 200
    r = await console.client.put("/api/v1/admin/config/window/1", json={"categories": ["Z"]}, headers=console.csrf())
    assert r.status_code == 422 and "window[0].categories[0]" in r.json()["detail_en"]
    assert console.path.read_text(encoding="utf-8") == before_text


async def test_deleting_a_category_with_waiting_visitors_is_refused_in_both_languages(console: Console) -> None:
    assert (await console.login()).status_code == 200
    add = await console.client.put(
        "/api/v1/admin/config/category/D", json={"name": "不动产登记", "name_en": "Real estate"}, headers=console.csrf()
    )
    assert add.status_code == 200, add.text
    await console.hall.service.issue("D")
    text = console.path.read_text(encoding="utf-8")
    r = await console.client.delete("/api/v1/admin/config/category/D", headers=console.csrf())
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "category_in_use" and "等候" in body["detail"] and "waiting" in body["detail_en"]
    assert console.path.read_text(encoding="utf-8") == text
    assert console.hall.service.cfg.category_by_prefix("D") is not None


async def test_readonly_accounts_cannot_change_anything(console: Console) -> None:
    assert (await console.login("viewer")).status_code == 200
    assert (await console.client.get("/api/v1/admin/config")).status_code == 200
    r = await console.client.put("/api/v1/admin/config/window/1", json={"name": "x"}, headers=console.csrf())
    assert r.status_code == 403
    r = await console.client.post(
        "/api/v1/admin/accounts", json={"name": "x", "role": "hall_admin", "password": PASSWORD}, headers=console.csrf()
    )
    assert r.status_code == 403


async def test_audit_chain_verifies_and_a_row_edited_with_sqlite3_is_named(console: Console) -> None:
    assert (await console.login()).status_code == 200
    for n in (1, 2, 3):
        r = await console.client.put(
            f"/api/v1/admin/config/window/{n}", json={"name": f"窗口{n}"}, headers=console.csrf()
        )
        assert r.status_code == 200
    ok = (await console.client.get("/api/v1/admin/audit/verify")).json()
    assert ok["ok"] is True and ok["rows"] >= 6
    assert console.cli("audit", "verify").returncode == 0

    rows = await console.hall.store.audit_rows()
    victim = next(r for r in rows if r.target == "window:2")
    db = sqlite3.connect(console.hall.cfg.store.path)
    db.execute("UPDATE audit_log SET after = ? WHERE seq = ?", ('{"name":"篡改"}', victim.seq))
    db.commit()
    db.close()
    bad = (await console.client.get("/api/v1/admin/audit/verify")).json()
    assert bad["ok"] is False and bad["first_bad"] == victim.seq
    cli = console.cli("audit", "verify")
    assert cli.returncode == 1 and f"row {victim.seq}" in cli.stdout


async def test_audit_export_csv_and_jsonl(console: Console, tmp_path: Path) -> None:
    assert (await console.login()).status_code == 200
    csv_text = (await console.client.get("/api/v1/admin/audit/export", params={"format": "csv"})).text
    assert csv_text.splitlines()[0] == "seq,at,actor,action,target,before,after,prev_hash,hash"
    assert any(",login," in line for line in csv_text.splitlines())
    out = tmp_path / "audit.jsonl"
    r = console.cli("audit", "export", "--since", "2026-01-01", "--format", "jsonl", "-o", str(out))
    assert r.returncode == 0, r.stderr
    import json

    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {"login", "account.create"} <= {x["action"] for x in lines}


async def test_cli_creates_an_account_from_stdin_and_its_token_changes_are_audited(console: Console) -> None:
    r = console.cli("admin", "add", "clerk-lead", "--role", "supervisor", "--password-stdin", stdin="a long password\n")
    assert r.returncode == 0, r.stderr
    assert "a long password" not in r.stdout + r.stderr
    ok = await console.login("clerk-lead", "a long password")
    assert ok.status_code == 200 and ok.json()["role"] == "supervisor"

    made = console.cli("token", "create", "--role", "display", "--label", "lobby")
    assert made.returncode == 0, made.stderr
    rows = await console.hall.store.audit_rows()
    created = next(r for r in rows if r.action == "token.create")
    assert created.actor.startswith("cli:") and created.after["label"] == "lobby"
    assert made.stdout.strip() not in str([r.to_dict() for r in rows])  # the token itself is never logged


async def test_audit_retention_has_a_six_month_floor_and_purge_keeps_the_chain(console: Console) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(config_dict(admin={"audit_retention_days": 100}))
    assert any("admin.audit_retention_days" in line for line in err.value.lines)

    assert (await console.login()).status_code == 200
    console.clock.advance(days=401)
    assert (await console.login()).status_code == 200
    await console.hall.service.purge()
    rows = await console.hall.store.audit_rows()
    assert rows[-1].action == "audit.purge" and all(r.action != "account.create" for r in rows)
    assert (await console.hall.store.verify_audit())[1] is None


def png(width: int = 30, height: int = 40) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


async def test_staff_photo_upload_is_checked_audited_and_served_to_tokens(console: Console) -> None:
    from hallctl import auth

    assert (await console.login()).status_code == 200
    bad = await console.client.put("/api/v1/admin/staff/0231/photo", content=b"GIF89a...", headers=console.csrf())
    assert bad.status_code == 422 and bad.json()["code"] == "bad_photo"
    big = await console.client.put(
        "/api/v1/admin/staff/0231/photo", content=b"\x89PNG\r\n\x1a\n" + b"0" * 70_000, headers=console.csrf()
    )
    assert big.status_code in (413, 422)  # the body limit or the photo's own limit
    unknown = await console.client.put("/api/v1/admin/staff/9999/photo", content=png(), headers=console.csrf())
    assert unknown.status_code == 404
    image = png()
    ok = await console.client.put("/api/v1/admin/staff/0231/photo", content=image, headers=console.csrf())
    assert ok.status_code == 200 and ok.json()["type"] == "image/png"

    token = await auth.create_token(console.hall.store, "window", (1,))
    got = await console.client.get("/api/v1/staff/0231/photo", params={"token": token})
    assert got.status_code == 200 and got.content == image and got.headers["content-type"] == "image/png"
    assert (await console.client.get("/api/v1/staff/0231/photo")).status_code == 401
    assert (await console.hall.store.audit_rows())[-1].action == "staff.photo"

    console.client.cookies.clear()
    assert (await console.login("viewer")).status_code == 200
    r = await console.client.put("/api/v1/admin/staff/0231/photo", content=image, headers=console.csrf())
    assert r.status_code == 403


async def test_opening_hours_edited_live_close_a_category_at_once(console: Console) -> None:
    from hallctl.errors import Refused

    assert (await console.login()).status_code == 200
    await console.hall.service.issue("A")  # Monday 09:00: open all day
    r = await console.client.put(
        "/api/v1/admin/config/category/A", json={"hours": ["mon-fri 13:00-17:00"]}, headers=console.csrf()
    )
    assert r.status_code == 200, r.text
    with pytest.raises(Refused) as refused:
        await console.hall.service.issue("A")
    assert refused.value.code == "category_closed"
    assert 'hours = ["mon-fri 13:00-17:00"]' in console.path.read_text(encoding="utf-8")


async def test_a_window_added_live_calls_at_once_and_cannot_be_deleted_while_serving(console: Console) -> None:
    assert (await console.login()).status_code == 200
    r = await console.client.put(
        "/api/v1/admin/config/window/7", json={"name": "7号窗口 新开", "categories": ["A"]}, headers=console.csrf()
    )
    assert r.status_code == 200, r.text
    assert "[[window]]\nnumber = 7\n" in console.path.read_text(encoding="utf-8")
    issued = (await console.hall.service.issue("A")).ticket
    called = await console.hall.service.call_next(7)
    assert called is not None and called.id == issued.id
    refused = await console.client.delete("/api/v1/admin/config/window/7", headers=console.csrf())
    assert refused.status_code == 409 and refused.json()["code"] == "window_in_use"
    await console.hall.service.finish(7)
    gone = await console.client.delete("/api/v1/admin/config/window/7", headers=console.csrf())
    assert gone.status_code == 200
    assert console.hall.service.cfg.window_by_number(7) is None
    assert "number = 7" not in console.path.read_text(encoding="utf-8")
    assert [r.action for r in await console.hall.store.audit_rows()][-2:] == [
        "config.window.create",
        "config.window.delete",
    ]


async def test_a_hall_admin_changes_roles_and_disables_accounts_but_never_locks_the_hall_out(
    console: Console,
) -> None:
    """PUT /admin/accounts/{name}: a role change takes effect in open sessions; a disabled account's
    sessions end at once and it cannot log in until enabled; nobody changes or disables themselves;
    the last enabled hall admin stays one. Every change is in the audit log."""
    viewer = httpx.AsyncClient(base_url=str(console.client.base_url), timeout=20)
    try:
        r = await viewer.post("/api/v1/admin/login", json={"name": "viewer", "password": PASSWORD})
        assert r.status_code == 200
        assert (await console.login()).status_code == 200

        r = await console.client.put(
            "/api/v1/admin/accounts/viewer", json={"role": "supervisor"}, headers=console.csrf()
        )
        assert r.status_code == 200 and r.json()["role"] == "supervisor", r.text
        assert (await viewer.get("/api/v1/admin/me")).json()["role"] == "supervisor"  # the open session too

        r = await console.client.put("/api/v1/admin/accounts/viewer", json={"disabled": True}, headers=console.csrf())
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert (await viewer.get("/api/v1/admin/me")).status_code == 401  # its session ended now
        again = await viewer.post("/api/v1/admin/login", json={"name": "viewer", "password": PASSWORD})
        assert again.status_code == 401

        r = await console.client.put("/api/v1/admin/accounts/viewer", json={"disabled": False}, headers=console.csrf())
        assert r.status_code == 200 and r.json()["disabled"] is False
        assert (await viewer.post("/api/v1/admin/login", json={"name": "viewer", "password": PASSWORD})).is_success

        own = await console.client.put("/api/v1/admin/accounts/boss", json={"role": "readonly"}, headers=console.csrf())
        assert own.status_code == 422 and own.json()["code"] == "own_account"
        # A second hall admin disables the first's deputy: allowed (boss stays), and the deputy's session ends.
        await console.hall.admin.add_account("deputy", "hall_admin", PASSWORD, "test")
        deputy = httpx.AsyncClient(base_url=str(console.client.base_url), timeout=20)
        try:
            assert (await deputy.post("/api/v1/admin/login", json={"name": "deputy", "password": PASSWORD})).is_success
            csrf = {"X-CSRF-Token": deputy.cookies.get("hallctl_csrf") or ""}
            r = await console.client.put(
                "/api/v1/admin/accounts/deputy", json={"disabled": True}, headers=console.csrf()
            )
            assert r.status_code == 200
            late = await deputy.put("/api/v1/admin/accounts/boss", json={"role": "readonly"}, headers=csrf)
            assert late.status_code == 401
        finally:
            await deputy.aclose()
        # boss is now the only enabled hall admin: neither a demotion nor a disable may leave none.
        with pytest.raises(Conflict) as exc:
            await console.hall.admin.change("boss", "deputy", role="readonly")
        assert exc.value.code == "last_admin"
        with pytest.raises(Conflict) as exc:
            await console.hall.admin.change("boss", "deputy", disabled=True)
        assert exc.value.code == "last_admin"

        denied = await viewer.put("/api/v1/admin/accounts/boss", json={"disabled": True}, headers={})
        assert denied.status_code in (401, 403)
        actions = [r.action for r in await console.hall.store.audit_rows()]
        assert "account.role" in actions and "account.enable" in actions and actions.count("account.disable") == 2
    finally:
        await viewer.aclose()
