"""``hallctl``: run the daemon, the demo, and the admin chores around them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hallctl import config as config_mod
from hallctl.config import DEFAULT_CONFIG_PATH, Config, ConfigError
from hallctl.errors import ListenRefused, StoreUnavailable

log = logging.getLogger("hallctl")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("transitions", "uvicorn.error", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str) -> Config:
    try:
        return config_mod.load(path)
    except ConfigError as exc:
        print(f"hallctl: invalid configuration {path}:", file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(2) from exc


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file or args.config)
    print(
        f"{args.file or args.config}: OK (hall {cfg.hall.id}: {len(cfg.category)} categories, "
        f"{len(cfg.window)} windows, {len(cfg.kiosk)} kiosks, {len(cfg.device)} devices)"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # No cyclic garbage collection while the daemon imports and starts: it would walk the
    # growing heap of modules, routes and the loaded queue again and again (about a tenth of
    # the start-up CPU with 30,000 waiting, issue 12). Hall.start turns it on again once serving.
    gc.disable()
    from hallctl.daemon import Hall, refuse_pydantic_v1, run_loop

    refuse_pydantic_v1()  # before Hall(): its components' routers are built at construction

    cfg = _load(args.config)
    _setup_logging(args.verbose)
    hall = Hall(cfg, config_path=Path(args.config))
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(hall.run_until_signalled())
    return 0


def _refuse(exc: StoreUnavailable) -> int:
    """A store that cannot be used (in use, damaged, bad path): one line, exit 2 (systemd does not retry)."""
    print(f"hallctl: {exc.message_en}", file=sys.stderr)
    return 2


def cmd_demo(args: argparse.Namespace) -> int:
    from hallctl.daemon import refuse_pydantic_v1, run_loop

    refuse_pydantic_v1()
    from hallctl.demo import run_demo

    _setup_logging(args.verbose)
    config_file = args.config if args.config_given else None
    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    result: int = run_loop(run_demo(data, args.port, args.host, config_file))
    return result


async def _with_store(cfg: Config, fn: Any) -> Any:
    from hallctl.store import Store

    store = Store(cfg.store.path, busy_timeout_ms=cfg.store.busy_timeout_ms)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _cli_actor() -> str:
    """Who, in the audit log, for a change made on the command line (the Unix user)."""
    import getpass

    return f"cli:{getpass.getuser()}"


def cmd_token(args: argparse.Namespace) -> int:
    from hallctl import auth

    cfg = _load(args.config)
    if args.token_cmd == "create":
        kiosks: tuple[str, ...] = (auth.ALL_KIOSKS,) if args.all_kiosks else tuple(args.kiosk or ())
        if args.role == "kiosk" and not kiosks:
            print("hallctl: a kiosk token needs --kiosk ID (repeatable) or --all-kiosks", file=sys.stderr)
            return 2
        if args.role != "kiosk" and kiosks:
            print("hallctl: --kiosk and --all-kiosks are for kiosk tokens only", file=sys.stderr)
            return 2
        unknown = [k for k in kiosks if k != auth.ALL_KIOSKS and cfg.kiosk_by_id(k) is None]
        if unknown:
            print(f"hallctl: no kiosk {', '.join(unknown)} in the config", file=sys.stderr)
            return 2

        async def create(s: Any) -> str:
            token = await auth.create_token(s, args.role, tuple(args.window or ()), args.label or "", kiosks=kiosks)
            after = {"role": args.role, "windows": list(args.window or ()), "kiosks": list(kiosks), "label": args.label}
            await s.audit(_now(), _cli_actor(), "token.create", f"token:{args.label or ''}", None, after)
            return token

        try:
            token = asyncio.run(_with_store(cfg, create))
        except ValueError as exc:
            print(f"hallctl: {exc}", file=sys.stderr)
            return 2
        print(token)
    elif args.token_cmd == "list":
        for row in asyncio.run(_with_store(cfg, auth.list_tokens)):
            print(json.dumps(row, ensure_ascii=False))
    elif args.token_cmd == "revoke":

        async def revoke(s: Any) -> bool:
            done = await auth.revoke_token(s, args.id)
            if done:
                await s.audit(
                    _now(), _cli_actor(), "token.revoke", f"token:{args.id}", {"revoked": False}, {"revoked": True}
                )
            return done

        ok = asyncio.run(_with_store(cfg, revoke))
        if not ok:
            print(f"hallctl: no active token {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
    return 0


def cmd_mqtt_passwd(args: argparse.Namespace) -> int:
    """Add or change a role user of the embedded broker; prints the password (generated unless read from stdin)."""
    import secrets

    from hallctl.mqtt import acl, broker

    cfg = _load(args.config)
    if cfg.mqtt.url is not None:
        print("hallctl: [mqtt] url names an external broker; manage its users there (docs/mqtt.md)", file=sys.stderr)
        return 2
    try:
        user = acl.username(args.role, kiosk=args.kiosk, window=args.window)
    except ValueError as exc:
        print(f"hallctl: {exc}", file=sys.stderr)
        return 2
    if args.kiosk is not None and cfg.kiosk_by_id(args.kiosk) is None:
        print(f"hallctl: no kiosk {args.kiosk} in the config", file=sys.stderr)
        return 2
    if args.window is not None and all(w.number != args.window for w in cfg.window):
        print(f"hallctl: no window {args.window} in the config", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            print("hallctl: empty password on stdin", file=sys.stderr)
            return 2
    else:
        password = secrets.token_urlsafe(18)
    state_dir = Path(cfg.store.path).resolve().parent
    passwd_file = broker.broker_dir(state_dir) / "passwd"
    try:
        broker.set_password(passwd_file, user, password)
    except broker.EmbeddedBrokerError as exc:
        print(f"hallctl: {exc}", file=sys.stderr)
        return 1
    pid = broker.signal_running(state_dir)
    note = f"; the running broker (pid {pid}) reloaded it" if pid else ""
    print(f"user {user} written to {passwd_file}{note}", file=sys.stderr)
    if not args.password_stdin:
        print(password)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from hallctl import engine
    from hallctl.reports.stats import day_stats
    from hallctl.reports.stats_text import render
    from hallctl.service import utcnow

    cfg = _load(args.config)
    day = date.fromisoformat(args.date) if args.date else engine.business_day(utcnow(), cfg)
    result = asyncio.run(_with_store(cfg, lambda s: day_stats(s, cfg, day)))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print("\n".join(render(result, cfg, args.lang)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """A daily or monthly report (docs/reports.md) from the database, written to ``-o FILE`` or stdout."""
    from hallctl import engine
    from hallctl.reports import export, source
    from hallctl.reports.daily import month_days
    from hallctl.service import utcnow

    cfg = _load(args.config)
    now = utcnow()
    try:
        if args.month:
            month_days(args.month)
            report = asyncio.run(_with_store(cfg, lambda s: source.monthly_report(s, cfg, args.month, now)))
        else:
            day = date.fromisoformat(args.day) if args.day else engine.business_day(now, cfg)
            report = asyncio.run(_with_store(cfg, lambda s: source.daily_report(s, cfg, day, now)))
    except ValueError as exc:
        print(f"hallctl: {exc}", file=sys.stderr)
        return 2
    if args.format == "xlsx":
        if not args.output:
            print("hallctl: --format xlsx needs -o FILE", file=sys.stderr)
            return 2
        Path(args.output).write_bytes(export.to_xlsx(report, args.lang))
    else:
        text = (
            export.to_csv(report, args.table, args.lang)
            if args.format == "csv"
            else json.dumps(report, ensure_ascii=False, indent=2) + "\n"
        )
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        else:
            sys.stdout.write(text)
    if args.output:
        print(f"{report['kind']} report {report['period']} written to {args.output}", file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from hallctl.store import backup_file

    cfg = _load(args.config)
    backup_file(cfg.store.path, args.file)  # online: works while the daemon runs; the copy is 0600
    print(f"backed up {cfg.store.path} to {args.file}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from hallctl.service import retention, utcnow

    cfg = _load(args.config)
    done = asyncio.run(_with_store(cfg, lambda s: retention.purge(s, cfg, utcnow())))
    for line in done.lines(cfg):
        print(line)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Drive the simulators of a running demo through its admin API."""
    from hallctl.demo import running_demo

    url = args.url or running_demo(Path(args.data))
    if url is None:
        print(
            f"hallctl: no demo is running from {args.data} (start one with `make demo`, "
            "or give --data DIR of the demo you started, or --url)",
            file=sys.stderr,
        )
        return 2
    base = url.rstrip("/")
    token = args.token or os.environ.get("HALLCTL_TOKEN")
    if token is None:
        tokens_file = Path(args.data) / "tokens.json"
        if tokens_file.exists():
            token = json.loads(tokens_file.read_text())["admin"]
    if token is None:
        print("hallctl: no admin token (use --token or run `hallctl demo` first)", file=sys.stderr)
        return 2
    body: dict[str, Any] = {}
    if args.what == "swipe":
        path, body = f"/api/v1/sim/kiosk/{args.target}/swipe", {"card": args.card or "0"}
    elif args.what == "remove":
        path = f"/api/v1/sim/kiosk/{args.target}/remove"
    elif args.what == "evaluate":
        path, body = f"/api/v1/sim/window/{args.target}/press", {"level": args.level}
    elif args.what == "badge":
        path = f"/api/v1/sim/window/{args.target}/badge"
        body = _badge_body(args.card)
    elif args.what == "paper":
        path, body = f"/api/v1/sim/device/{args.target}/paper", {"state": args.state}
    elif args.what in ("unplug", "plug"):
        path = f"/api/v1/sim/device/{args.target}/{args.what}"
    elif args.what == "climate":
        path, body = f"/api/v1/sim/sensor/{args.target}", {"temperature": args.temperature, "humidity": args.humidity}
    elif args.what == "weather":
        path = "/api/v1/sim/weather"
        if args.target in ("summer", "winter"):
            body = {"weather": args.target}
        else:
            try:
                body = {"temperature": float(args.target.removesuffix("C").removesuffix("c"))}
            except ValueError:
                print("hallctl: weather is summer, winter or a temperature in °C (e.g. 35)", file=sys.stderr)
                return 2
        if args.speed is not None:
            body["speed"] = args.speed
    else:  # pragma: no cover - argparse restricts choices
        return 2
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"hallctl: cannot reach {base}: {exc.reason}", file=sys.stderr)
        return 1
    return 0


def _badge_body(card: str | None) -> dict[str, Any]:
    """``--card``: nothing = the first staff badge, ``off`` = take it away, hex = a UID, else a staff id."""
    if card is None:
        return {}
    if card.lower() in ("off", "remove", "none"):
        return {"remove": True}
    if len(card) % 2 == 0 and len(card) >= 4 and all(c in "0123456789abcdefABCDEF" for c in card):
        return {"uid": card.upper()}
    return {"staff": card}


def cmd_central(args: argparse.Namespace) -> int:
    """The city's central (docs/city.md): its own config file, validated like the hall's."""
    from hallctl.central import config as central_config

    _setup_logging(args.verbose)
    if args.file == "report" and args.action is None:  # `hallctl central -c FILE report ...`
        args.file, args.action = None, "report"
    path = args.file or args.config
    try:
        cfg = central_config.load(path)
    except ConfigError as exc:
        print(f"hallctl central: invalid configuration {path}:", file=sys.stderr)
        for line in exc.lines:
            print(f"  {line}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{path}: OK (central {cfg.central.id}, {len(cfg.hall)} halls listed)")
        return 0
    if args.action == "report" or args.day or args.month:
        from hallctl.central import cli_report

        return cli_report.run(
            cfg, day=args.day, month=args.month, hall=args.hall, fmt=args.format, table=args.table,
            lang=args.lang, output=args.output,
        )  # fmt: skip
    from hallctl.central.run import main as run_central

    return run_central(cfg)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hallctl", description="Hall-control daemon for government service halls.")
    p.add_argument("-c", "--config", default=str(DEFAULT_CONFIG_PATH), help="TOML config file")
    p.add_argument("-v", "--verbose", action="store_true")
    # Every command also takes -c/-v after its name (`hallctl run -c FILE`), as the conventions promise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help="TOML config file")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True)
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    sub.add_parser("run", help="run the daemon").set_defaults(func=cmd_run)

    cen = sub.add_parser("central", help="the city's central: ingest many halls into PostgreSQL, city dashboard")
    cen.add_argument("file", nargs="?", help="central TOML config (default: -c)")
    cen.add_argument("--check", action="store_true", help="validate the config and exit")
    cen.add_argument("action", nargs="?", choices=["run", "report"], help="run (default) or report (docs/city.md)")
    cen_when = cen.add_mutually_exclusive_group()
    cen_when.add_argument("--day", help="report: day YYYY-MM-DD (default today)")
    cen_when.add_argument("--month", help="report: month YYYY-MM")
    cen.add_argument("--hall", help="report: one hall's own report (default: across halls)")
    cen.add_argument("--format", choices=["xlsx", "csv", "json"], default="json", help="report: file format")
    cen.add_argument("--table", help="report: the breakdown a CSV holds (default by_hall, or by_window with --hall)")
    cen.add_argument("--lang", choices=["zh", "en"], default="zh", help="report: header language")
    cen.add_argument("-o", "--output", help="report: write to FILE (default stdout; xlsx needs it)")
    cen.set_defaults(func=cmd_central)

    demo = sub.add_parser("demo", help="a whole hall on simulated devices, embedded broker, pages served")
    demo.add_argument("--data", default="var/demo", help="state directory for the demo")
    demo.add_argument("--port", type=int, help="HTTP port (default 8780, or the -c file's [api] port)")
    demo.add_argument("--host", help="HTTP address (default 127.0.0.1, or the -c file's [api] host)")
    demo.set_defaults(func=cmd_demo)

    chk = sub.add_parser("check-config", help="validate a config file and exit")
    chk.add_argument("file", nargs="?")
    chk.set_defaults(func=cmd_check_config)

    tok = sub.add_parser("token", help="API tokens")
    tsub = tok.add_subparsers(dest="token_cmd", required=True)
    tc = tsub.add_parser("create", parents=[common])
    tc.add_argument("--role", required=True, choices=["kiosk", "window", "pad", "display", "hvac", "guide", "admin"])
    tc.add_argument("--window", type=int, action="append", help="window number (repeatable) for window and pad tokens")
    tc.add_argument("--kiosk", action="append", help="kiosk id (repeatable) a kiosk token acts for")
    tc.add_argument("--all-kiosks", action="store_true", help="a kiosk token that acts for every kiosk")
    tc.add_argument("--label")
    tsub.add_parser("list", parents=[common])
    tr = tsub.add_parser("revoke", parents=[common])
    tr.add_argument("id", type=int)
    tok.set_defaults(func=cmd_token)

    mq = sub.add_parser("mqtt", help="the embedded MQTT broker")
    msub = mq.add_subparsers(dest="mqtt_cmd", required=True)
    mp = msub.add_parser(
        "passwd", parents=[common], help="add or change a role user (needed once a lan_listener is configured)"
    )
    mp.add_argument("role", choices=["kiosk", "window", "display", "hvac", "homeassistant"])
    mp.add_argument("--kiosk", help="the kiosk id (role kiosk): user kiosk-ID")
    mp.add_argument("--window", type=int, help="the window number (role window): user window-N")
    mp.add_argument("--password-stdin", action="store_true", help="read the password from stdin instead of making one")
    mp.set_defaults(func=cmd_mqtt_passwd)

    st = sub.add_parser("stats", help="statistics of a business day")
    st.add_argument("--date")
    st.add_argument("--json", action="store_true")
    st.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the lines (default Chinese)")
    st.set_defaults(func=cmd_stats)

    rp = sub.add_parser("report", help="daily or monthly report (日报/月报) as XLSX, CSV or JSON")
    when = rp.add_mutually_exclusive_group()
    when.add_argument("--day", help="business day YYYY-MM-DD (default today)")
    when.add_argument("--month", help="month YYYY-MM")
    rp.add_argument("--format", choices=["xlsx", "csv", "json"], default="json")
    rp.add_argument(
        "--table",
        default="by_window",
        choices=[
            "total",
            "by_day",
            "by_department",
            "by_category",
            "by_window",
            "by_staff",
            "by_hour",
            "attendance",
            "unstaffed",
            "ratings",
        ],
        help="CSV: which breakdown (docs/reports.md)",
    )
    rp.add_argument("--lang", choices=["zh", "en"], default="zh", help="header language")
    rp.add_argument("-o", "--output", help="file to write (stdout for csv and json when absent)")
    rp.set_defaults(func=cmd_report)

    bk = sub.add_parser("backup", help="online backup of the database")
    bk.add_argument("file")
    bk.set_defaults(func=cmd_backup)

    sub.add_parser("purge", help="apply the retention policy now").set_defaults(func=cmd_purge)

    sim = sub.add_parser("simulate", help="drive the simulated devices of a running demo")
    sim.add_argument(
        "what", choices=["swipe", "remove", "evaluate", "badge", "paper", "unplug", "plug", "climate", "weather"]
    )
    sim.add_argument(
        "target", help="kiosk id, window number, device id, sensor id, or (weather) summer, winter or a temperature °C"
    )
    sim.add_argument(
        "--card",
        help="swipe: sample card index (default 0); badge: a staff id or badge UID in hex, "
        "'off' to take the badge away (default: the first staff member's badge)",
    )
    sim.add_argument("--level", type=int, default=5)
    sim.add_argument("--state", default="out", choices=["ok", "near_end", "out"])
    sim.add_argument("--temperature", type=float, default=26.0)
    sim.add_argument("--humidity", type=float, default=50.0)
    sim.add_argument("--speed", type=float, help="weather: simulated seconds per real second (1 = real time)")
    sim.add_argument("--url", help="the demo's address (default: found in DATA/demo.json)")
    sim.add_argument("--token")
    sim.add_argument("--data", default="var/demo")
    sim.set_defaults(func=cmd_simulate)

    from hallctl.admin.cli import add_parsers as admin_parsers

    admin_parsers(sub, common, _load)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    raw = sys.argv[1:] if argv is None else argv
    args.config_given = any(a in ("-c", "--config") or a.startswith("--config=") for a in raw)
    try:
        result: int = args.func(args)
    except StoreUnavailable as exc:
        if args.cmd == "demo" and exc.code == "store_in_use":
            # The usual cause: a first demo runs from the same state directory.
            print(
                f"hallctl: {exc.message_en}; a second demo needs its own database: "
                "hallctl demo --port 8781 --data var/demo2 (make demo PORT=8781 DATA=var/demo2), "
                "or with -c FILE its own [store] path",
                file=sys.stderr,
            )
            return 2
        return _refuse(exc)
    except ListenRefused as exc:
        print(f"hallctl: {exc.message_en}", file=sys.stderr)
        return 1  # systemd retries: the process holding the port may be on its way out
    return result


if __name__ == "__main__":
    raise SystemExit(main())
