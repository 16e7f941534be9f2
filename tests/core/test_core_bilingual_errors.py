"""Every error a page can show is Chinese (``message``) with its English (``message_en``); help reaches the guide.

Pages show ``detail`` in Chinese mode and ``detail_en`` in English mode (problem+json), MQTT
replies carry ``message`` and ``message_en``. An error raised with one text only shows that
text in both modes, so clerks saw ``window 4 is paused; resume it first`` in Chinese mode.
The check reads the source: every construction of a :class:`~hallctl.errors.HallctlError`
type in ``hallctl/`` (the demo's simulator control API apart: a developer's tool) gives both
texts, the first with Chinese characters in it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hallctl import config, errors
from hallctl.commands import CommandError
from hallctl.commands.ratelimit import RateLimited
from tests.core.core_helpers import LiveHall, config_dict

ROOT = Path(__file__).resolve().parents[2] / "hallctl"
ERROR_TYPES = {
    cls.__name__
    for cls in (*vars(errors).values(), CommandError, RateLimited)
    if isinstance(cls, type) and issubclass(cls, errors.HallctlError)
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _text(node: ast.expr) -> str:
    """The literal parts of a str or f-string argument ('' for anything computed)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return ""


def one_language_errors() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if "simulation" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ERROR_TYPES or name == "RateLimited":
                continue
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
            if any(isinstance(a, ast.Starred) for a in node.args):
                continue  # Forbidden(*cmd.refusal): the tuple's type says (code, zh, en)
            en = len(node.args) >= 3 or any(k.arg == "message_en" for k in node.keywords)
            zh = node.args[1] if len(node.args) >= 2 else None
            if not en:
                found.append(f"{where}: no message_en")
            elif zh is not None and _text(zh) and not CJK.search(_text(zh)):
                found.append(f"{where}: message is not Chinese: {_text(zh)!r}")
    return found


def test_every_error_outside_the_simulators_has_chinese_and_english() -> None:
    assert one_language_errors() == []


async def test_refusals_a_page_shows_come_in_both_languages(live: LiveHall) -> None:
    """What the pages showed in English in Chinese mode: a wrong token, another window, a bad rating, a kiosk."""
    c = live.client
    r = await c.post("/api/v1/windows/2/call-next", headers=live.auth("w1"))
    assert r.status_code == 403 and r.json()["detail"] == "此令牌不能操作2号窗口"
    assert r.json()["detail_en"] == "this token may not act for window 2"
    r = await c.post("/api/v1/windows/1/call-next", headers=live.auth("kiosk"))
    assert r.status_code == 403 and CJK.search(r.json()["detail"]) and r.json()["detail_en"].startswith("role kiosk")
    r = await c.get("/api/v1/kiosks/nope", headers=live.auth("admin"))
    assert r.status_code == 404 and r.json()["detail"] == "没有取号机 nope" and r.json()["detail_en"] == "no kiosk nope"
    r = await c.post("/api/v1/tickets", json={"category": 5}, headers=live.auth("kiosk"))
    assert r.status_code == 422 and r.json()["detail"].startswith("参数无效：") and r.json()["detail_en"]


async def test_a_kiosk_asks_for_help_and_the_alert_is_listed(hall_factory: Callable[..., Any]) -> None:
    """需要帮助: POST /kiosks/{kiosk}/help raises a help_requested alert that GET /alerts lists at once."""
    live: LiveHall = await hall_factory(kiosk=[{"id": "k1", "floor": 2, "categories": ["A"]}])
    c = live.client
    kiosk = "k1"
    r = await c.post(f"/api/v1/kiosks/{kiosk}/help", headers=live.auth("kiosk"))
    assert r.status_code == 200, r.text
    alert = r.json()["alert"]
    assert alert["alert"] == "help_requested" and alert["subject"] == kiosk
    assert (
        alert["message"] == "2楼k1号取号机有群众需要帮助"
        and alert["message_en"] == "A visitor at kiosk k1 (floor 2) needs help"
    )
    await live.svc.bus.drain()  # the supervision hears the alert through its own bus queue
    alerts = (await c.get("/api/v1/alerts", headers=live.auth("guide"))).json()
    assert any(a["alert"] == "help_requested" and a["subject"] == kiosk for a in alerts)
    assert (await c.post("/api/v1/kiosks/nope/help", headers=live.auth("kiosk"))).json()["code"] == "unknown_kiosk"
    assert (await c.post(f"/api/v1/kiosks/{kiosk}/help", headers=live.auth("display"))).status_code == 403


def test_guide_lists_are_checked_item_for_item() -> None:
    """[[category]] guide_en must pair with guide line for line; a bad list names the key."""
    raw = config_dict()
    raw["category"][0] = {**raw["category"][0], "guide": ["身份证原件", "户口簿"], "guide_en": ["ID card"]}
    with pytest.raises(config.ConfigError) as exc:
        config.parse(raw)
    assert "category" in str(exc.value) and "guide_en has 1 items but guide has 2" in str(exc.value)
    raw["category"][0]["guide_en"] = ["ID card (original)", "Household register"]
    assert config.parse(raw).category[0].guide_en == ("ID card (original)", "Household register")


def test_an_mqtt_error_reply_carries_what_the_http_problem_carries() -> None:
    """message (zh), message_en and the problem's extra members (a clerk's choices) travel over MQTT too."""
    from hallctl.mqtt.commands import error_reply

    exc = errors.Conflict(
        "current_not_started",
        "A001已叫号但未开始办理，请选择",
        "A001 was called but not started: choose",
        extra={"choices": ["finish", "no_show", "recall"]},
    )
    assert error_reply(exc) == {
        "ok": False,
        "error": {
            "code": "current_not_started",
            "message": "A001已叫号但未开始办理，请选择",
            "message_en": "A001 was called but not started: choose",
            "choices": ["finish", "no_show", "recall"],
        },
    }
    bad = CommandError("invalid_arguments", "参数无效：x", "x", errors=[{"loc": ["x"], "msg": "m", "type": "t"}])
    assert error_reply(bad)["error"]["errors"] == [{"loc": ["x"], "msg": "m", "type": "t"}]
