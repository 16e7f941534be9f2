"""The hall's configuration: one TOML file, validated before anything starts.

Every model forbids unknown keys, so a typo is an error and not a silently
ignored option. :func:`explain` turns pydantic's errors into ``key = value:
reason`` lines; ``hallctl run`` and ``hallctl check-config`` print the same text.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG_PATH = Path("/etc/hallctl/hallctl.toml")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RE = re.compile(
    r"^(?P<d1>mon|tue|wed|thu|fri|sat|sun)(?:-(?P<d2>mon|tue|wed|thu|fri|sat|sun))?\s+"
    r"(?P<h1>\d{2}):(?P<m1>\d{2})-(?P<h2>\d{2}):(?P<m2>\d{2})$"
)
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class ConfigError(Exception):
    """The configuration cannot be used; ``lines`` name each key and the reason."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpeningSpan(_Model):
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time | None  # None = until midnight ("24:00")

    def contains(self, weekday: int, t: time) -> bool:
        return weekday in self.days and self.start <= t and (self.end is None or t < self.end)


def parse_hours(spec: str) -> OpeningSpan:
    """``"mon-fri 09:00-17:00"`` → an :class:`OpeningSpan`; raises ``ValueError`` naming the problem."""
    m = _HOURS_RE.match(spec.strip().lower())
    if not m:
        raise ValueError(f"expected 'mon-fri 09:00-17:00', got {spec!r}")
    d1 = DAYS.index(m["d1"])
    d2 = DAYS.index(m["d2"]) if m["d2"] else d1
    if d2 < d1:
        raise ValueError(f"day range {m['d1']}-{m['d2']} runs backwards")
    h1, m1, h2, m2 = (int(m[k]) for k in ("h1", "m1", "h2", "m2"))
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"invalid time in {spec!r}")
    start = time(h1, m1)
    end = None if h2 == 24 else time(h2, m2)
    if end is not None and end <= start:
        raise ValueError(f"closing time is not after opening time in {spec!r}")
    return OpeningSpan(days=frozenset(range(d1, d2 + 1)), start=start, end=end)


class HallConfig(_Model):
    id: Slug
    name: str = Field(min_length=1)
    name_en: str = ""
    timezone: str = "Asia/Shanghai"
    day_reset_hour: int = Field(default=3, ge=0, le=23)
    notice: str = ""
    notice_en: str = ""  # the calling screen's ticker in English mode (tickets print the Chinese notice)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StoreConfig(_Model):
    path: str = "/var/lib/hallctl/hallctl.db"
    busy_timeout_ms: int = Field(default=2000, ge=0, le=60000)
    max_size_mb: float | None = Field(default=None, gt=0)
    # Start-up integrity check found damage (lost WAL frames, gaps): refuse to start (exit 2),
    # or continue after the number high-water mark with a persistent alert.
    on_damage: Literal["refuse", "continue"] = "refuse"


class RateBucket(_Model):
    """A token bucket: ``rate`` calls a second on average, ``burst`` at once."""

    rate: float = Field(gt=0, le=100000)
    burst: int = Field(ge=1, le=100000)


# Token roles (hallctl/auth.py); here, the lowest layer, so config checks and auth share one list.
ROLES: tuple[str, ...] = ("kiosk", "window", "pad", "display", "hvac", "guide", "admin", "central")


def _default_role_buckets() -> dict[str, RateBucket]:
    return {
        "admin": RateBucket(rate=50, burst=200),
        "kiosk": RateBucket(rate=5, burst=20),
        "display": RateBucket(rate=5, burst=20),
        "guide": RateBucket(rate=10, burst=40),
        "window": RateBucket(rate=5, burst=30),
        "pad": RateBucket(rate=2, burst=10),
        "hvac": RateBucket(rate=5, burst=20),
        "central": RateBucket(rate=5, burst=20),
    }


def _default_command_buckets() -> dict[str, RateBucket]:
    return {
        "ticket.issue": RateBucket(rate=2, burst=10),
        "appointment.check_in": RateBucket(rate=2, burst=10),
        "ticket.evaluate": RateBucket(rate=1, burst=5),
        "window.evaluate": RateBucket(rate=1, burst=5),
    }


class RateLimitConfig(_Model):
    """Per-token token buckets: every command takes one from the token's role bucket, and a command
    listed in ``commands`` also from that command's bucket for the token. Over either: 429 ``rate_limited``."""

    enabled: bool = True
    roles: dict[str, RateBucket] = Field(default_factory=_default_role_buckets)
    commands: dict[str, RateBucket] = Field(default_factory=_default_command_buckets)

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: dict[str, RateBucket]) -> dict[str, RateBucket]:
        unknown = sorted(set(v) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown} (roles: {', '.join(ROLES)})")
        return {**_default_role_buckets(), **v}

    @field_validator("commands")
    @classmethod
    def _commands(cls, v: dict[str, RateBucket]) -> dict[str, RateBucket]:
        bad = sorted(k for k in v if not re.fullmatch(r"[a-z_]+\.[a-z_]+", k))
        if bad:
            raise ValueError(f"{bad}: command names look like ticket.issue")
        return {**_default_command_buckets(), **v}


class ApiConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8780, ge=0, le=65535)
    # A request body larger than this is refused (413 body_too_large) while it streams, before
    # parsing and before the token check. Routes that need more say so in the code.
    max_body_bytes: int = Field(default=65536, ge=1024, le=64 * 1024 * 1024)
    # A connection must send its request line and headers within this time (also after a
    # keep-alive response), or it is closed.
    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    keep_alive_s: int = Field(default=5, ge=1, le=600)
    # Open connections at most (streams included); past this an idle connection that has not sent
    # its headers is closed to make room, else the new one is refused. Keep it well under the
    # process's file-descriptor limit (systemd LimitNOFILE).
    max_connections: int = Field(default=800, ge=16, le=100000)
    # Accept errors (EMFILE, out of file descriptors) are logged at most once per this interval.
    accept_error_log_interval_s: float = Field(default=60.0, gt=0, le=86400)
    max_streams: int = Field(default=1000, ge=1, le=100000)  # open SSE + WebSocket streams in all
    max_streams_per_token: int = Field(default=200, ge=1, le=100000)  # open streams of one token
    rate_limit: RateLimitConfig = RateLimitConfig()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_address(value: str) -> tuple[str, int]:
    """``"0.0.0.0:1883"`` or ``"[::]:1883"`` → (host, port); ValueError names what is wrong."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not host:
        raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:1883")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
        raise ValueError(f"port {port_s!r} is not 1..65535")
    return host, int(port_s)


class MqttConfig(_Model):
    url: str | None = None  # absent → embedded broker (a supervised Mosquitto child)
    embedded_host: str = "127.0.0.1"  # the embedded broker's local listener: a loopback address only
    embedded_port: int = Field(default=1883, ge=0, le=65535)  # 0 = any free port
    # A second listener of the embedded broker for the hall LAN ("HOST:PORT", "[v6]:PORT"); with it,
    # every client must log in (`hallctl mqtt passwd`) and the generated ACL applies.
    lan_listener: str | None = None
    # Anonymous clients on the loopback listener; None = yes without a LAN listener, no with one.
    embedded_anonymous: bool | None = None
    embedded_binary: str | None = None  # the mosquitto binary; None = PATH, then /usr/sbin/mosquitto
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    client_id: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    outbox_max: int = Field(default=10000, ge=10)
    keepalive: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=600)  # first retry delay; doubles, with jitter
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)  # cap of the backoff
    command_dedupe_s: float = Field(default=600.0, ge=0, le=86400)  # replay window for a repeated request_id
    # Larger messages are refused unparsed (commands get a payload_too_large reply); no command needs more.
    max_payload_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)

    @field_validator("embedded_host")
    @classmethod
    def _embedded_host(cls, v: str) -> str:
        if not _is_loopback(v):
            raise ValueError("must be a loopback address (127.0.0.1, ::1, localhost); use lan_listener for the LAN")
        return v

    @field_validator("lan_listener")
    @classmethod
    def _lan_listener(cls, v: str | None) -> str | None:
        if v is not None:
            lan_address(v)
        return v

    @model_validator(mode="after")
    def _embedded_only(self) -> MqttConfig:
        if self.url is not None:
            for key in ("lan_listener", "embedded_anonymous", "embedded_binary"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only for the embedded broker (no url)")
        if self.lan_listener is not None and self.embedded_anonymous:
            raise ValueError("embedded_anonymous: cannot be true with a lan_listener (every LAN client logs in)")
        return self

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("missing host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError("invalid port") from exc
        return v


class QueueConfig(_Model):
    max_recalls: int = Field(default=3, ge=0, le=20)
    # A recall sooner than this after the last call is refused: the announcement is still being said.
    recall_min_gap_s: float = Field(default=15.0, ge=0, le=600)
    per_id_daily_limit: int = Field(default=3, ge=1, le=100)
    priority_streak_cap: int = Field(default=3, ge=1, le=100)
    starvation_minutes: int = Field(default=45, ge=1, le=1440)
    elderly_age: int = Field(default=60, ge=1, le=150)
    auto_elderly_priority: bool = True
    appointment_early_minutes: int = Field(default=30, ge=0, le=1440)
    appointment_late_minutes: int = Field(default=15, ge=0, le=1440)
    call_next_finishes_current: bool = True
    # What "call next" (or a call by number) does while the current ticket was called but never
    # started: "ask" refuses (409 current_not_started) so the clerk chooses finish / no-show / recall;
    # "finish" counts it as served (service from the call); "no_show" ends it as 过号.
    call_next_unstarted: Literal["ask", "finish", "no_show"] = "ask"
    # A window calls only with a staff member signed in (badge or staff number): 409 not_signed_in.
    require_sign_in: bool = True
    evaluation_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    card_offer_seconds: float = Field(default=90.0, gt=0, le=3600)
    card_dedupe_seconds: float = Field(default=5.0, ge=0, le=600)


class CategoryConfig(_Model):
    prefix: str = Field(pattern=r"^[A-Z]{1,3}$")
    name: str = Field(min_length=1)
    name_en: str = ""
    hours: tuple[str, ...] = ("mon-sun 00:00-24:00",)
    target_wait_minutes: int = Field(default=15, ge=1, le=1440)
    service_minutes: int = Field(default=20, ge=1, le=1440)
    digits: int = Field(default=3, ge=2, le=5)
    description: str = ""
    # Open on statutory holidays too (a 24-hour self-service zone); otherwise a holiday closes it.
    open_on_holidays: bool = False
    # Appointments per slot for this category (None: ``[appointments] capacity``; 0: not bookable).
    appointment_capacity: int | None = Field(default=None, ge=0, le=1000)
    # The 进驻部门 (resident department) that handles it: reports sum its categories up per department.
    department: str | None = Field(default=None, min_length=1, max_length=64)
    # 办事指南: what a visitor brings for this matter, one item a line, shown on the kiosk.
    guide: tuple[str, ...] = Field(default=(), max_length=20)
    guide_en: tuple[str, ...] = Field(default=(), max_length=20)

    @model_validator(mode="after")
    def _guide(self) -> CategoryConfig:
        # The English page shows guide_en item for item: a list of another length would pair wrong lines.
        if self.guide_en and len(self.guide_en) != len(self.guide):
            raise ValueError(
                f"guide_en has {len(self.guide_en)} items but guide has {len(self.guide)}: give one English"
                " line per guide line, or none"
            )
        for item in (*self.guide, *self.guide_en):
            if not item.strip() or len(item) > 80:
                raise ValueError("guide items must be non-empty and at most 80 characters")
        return self

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for spec in v:
            parse_hours(spec)
        return v

    @property
    def spans(self) -> tuple[OpeningSpan, ...]:
        return tuple(parse_hours(s) for s in self.hours)


class CalendarConfig(_Model):
    """``[calendar]``: the days the hall works, for the queue's hours, appointments and the climate.

    Statutory holidays and 调休 make-up working days come from the ``chinese-calendar`` package
    (``statutory``); the hall's own days override them (docs/config.md, "Calendar").
    """

    statutory: bool = True
    closed_days: tuple[date, ...] = ()  # extra closed days (a 闭馆 day, a local holiday)
    open_days: tuple[date, ...] = ()  # extra working days (a weekend appointment day)
    # A make-up working day (调休上班) or an extra open day has this weekday's opening hours.
    workday_hours_from: Literal["mon", "tue", "wed", "thu", "fri"] = "mon"
    # Years beyond the package's data whose holidays the hall lists itself in closed_days/open_days.
    own_years: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarConfig:
        both = sorted(set(self.closed_days) & set(self.open_days))
        if both:
            raise ValueError(f"open_days = {[d.isoformat() for d in both]}: also listed in closed_days")
        return self


class AppointmentsConfig(_Model):
    """``[appointments]``: the slots a category offers, cut from its opening hours."""

    slot_minutes: int = Field(default=30, ge=5, le=240)
    capacity: int = Field(default=4, ge=0, le=1000)  # per slot per category
    max_days_ahead: int = Field(default=30, ge=0, le=366)


class GreenReason(_Model):
    id: Slug
    name: str = Field(min_length=1, max_length=16)
    name_en: str = Field(default="", max_length=32)


DEFAULT_GREEN_REASONS = (
    GreenReason(id="elderly", name="老年人", name_en="Elderly"),
    GreenReason(id="disabled", name="残疾人", name_en="Disabled"),
    GreenReason(id="pregnant", name="孕妇", name_en="Pregnant"),
    GreenReason(id="serviceman", name="军人", name_en="Serviceman"),
    GreenReason(id="key_enterprise", name="重点企业", name_en="Key enterprise"),
    GreenReason(id="other", name="其他", name_en="Other"),
)


class GuideConfig(_Model):
    """``[guide]``: the guide desk (导办台): the green-channel reasons it may record, and its printer.

    ``kiosk`` names the ``[[kiosk]]`` entry of the desk's own ticket printer: a ticket the desk
    issues for a visitor is printed there (unless the desk names another kiosk), so the visitor
    leaves the desk with a paper ticket like everyone else. Without it the desk's tickets are
    not printed (the number is told on screen, and a kiosk can reprint it).
    """

    green_reasons: tuple[GreenReason, ...] = Field(default=DEFAULT_GREEN_REASONS, min_length=1, max_length=20)
    kiosk: str | None = None

    @field_validator("green_reasons")
    @classmethod
    def _unique(cls, v: tuple[GreenReason, ...]) -> tuple[GreenReason, ...]:
        ids = [r.id for r in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate reason id {dup[0]!r}")
        return v


class WindowConfig(_Model):
    number: int = Field(ge=1, le=9999)
    name: str = ""
    name_en: str = ""
    floor: int = 1
    categories: tuple[str, ...] = Field(min_length=1)
    led: str | None = None  # device id of its LED bus
    led_address: int | None = Field(default=None, ge=1, le=254)
    pad: str | None = None
    badge_reader: str | None = None


class KioskConfig(_Model):
    id: Slug
    floor: int = 1
    categories: tuple[str, ...] = Field(min_length=1)
    reader: str | None = None
    printer: str | None = None


PRINTER_STATUS_MODES = ("query", "none")  # drivers.escpos.STATUS_MODES; config does not import drivers
DeviceKind = Literal["idcard", "printer", "led_bus", "evalpad", "badge", "modbus_sensor"]


class DeviceConfig(_Model):
    id: Slug
    kind: DeviceKind
    port: str | None = None  # serial path, pyserial URL, tcp://host:port, or PC/SC reader name
    protocol: str | None = None
    baudrate: int | None = Field(default=None, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    address: int | None = Field(default=None, ge=1, le=247)
    options: dict[str, Any] = Field(default_factory=dict)
    simulate: bool = False

    @model_validator(mode="after")
    def _port(self) -> DeviceConfig:
        if not self.simulate and not self.port:
            raise ValueError("a real device needs 'port' (or set simulate = true)")
        if self.kind == "printer":
            status = self.options.get("status", "query")
            if status not in PRINTER_STATUS_MODES:
                raise ValueError(
                    f"options.status must be one of {', '.join(map(repr, PRINTER_STATUS_MODES))}, not {status!r}"
                    " ('none' for printers that never answer DLE EOT status queries)"
                )
        elif "status" in self.options:
            raise ValueError("options.status is a printer option (kind = 'printer')")
        return self

    @property
    def printer_status(self) -> Literal["query", "none"]:
        """A printer's status mode (``options.status``): ``query`` unless set to ``none``."""
        return "none" if self.options.get("status") == "none" else "query"


def zigbee_device_id(sensor_id: str) -> str:
    """The device id under which a zigbee sensor's availability is reported (health, MQTT, HA)."""
    return f"zigbee-{sensor_id}"


class SensorConfig(_Model):
    id: Slug
    name: str = ""
    name_en: str = ""
    floor: int = 1
    source: Literal["modbus", "zigbee"]
    device: str | None = None  # modbus: device id
    friendly_name: str | None = None  # zigbee
    zigbee_base: str = "zigbee2mqtt"
    # zigbee: the simulated room of its zone (or floor) publishes its readings on the hall's broker as
    # zigbee2mqtt would (demo, tests); a modbus sensor is simulated through its device's ``simulate``.
    simulate: bool = False
    stale_after_s: float = Field(default=600.0, gt=0)
    # Per-sensor deadbands (None: the [sensors] defaults), e.g. a server-room sensor watched closely.
    deadband_temperature: float | None = Field(default=None, ge=0, le=10)
    deadband_humidity: float | None = Field(default=None, ge=0, le=50)

    @field_validator("friendly_name", "zigbee_base")
    @classmethod
    def _topic_part(cls, v: str | None) -> str | None:
        # Part of a subscription filter: a wildcard or an empty level would subscribe to something
        # else or make the broker drop the daemon's whole MQTT session.
        if v is None:
            return v
        if not v:
            raise ValueError("must not be empty")
        for bad, why in (("#", "an MQTT wildcard"), ("+", "an MQTT wildcard"), ("\0", "a NUL character")):
            if bad in v:
                raise ValueError(f"must not contain {bad!r} ({why}): it becomes part of an MQTT topic filter")
        if v.startswith("$"):
            raise ValueError("must not start with '$' (broker system topics)")
        if "" in v.split("/"):
            raise ValueError("must not have empty topic levels (leading, trailing or double '/')")
        if len(v.encode()) > 200:
            raise ValueError("too long for an MQTT topic (200 bytes at most)")
        return v

    @model_validator(mode="after")
    def _source(self) -> SensorConfig:
        if self.source == "modbus" and not self.device:
            raise ValueError("a modbus sensor needs 'device'")
        if self.source == "zigbee" and not self.friendly_name:
            raise ValueError("a zigbee sensor needs 'friendly_name'")
        if self.simulate and self.source != "zigbee":
            raise ValueError("simulate is for a zigbee sensor; a modbus sensor's device has 'simulate'")
        return self


# A climate zone's modes, once: the config, the climate.set command, the controller and HA discovery.
ClimateMode = Literal["auto", "off", "cool", "heat", "dry", "fan_only"]
CLIMATE_MODES: tuple[ClimateMode, ...] = get_args(ClimateMode)


class ClimateZoneConfig(_Model):
    id: Slug
    name: str = ""
    name_en: str = ""
    sensors: tuple[str, ...] = ()
    mode: ClimateMode = "auto"
    target: float = Field(default=26.0, ge=10, le=35)
    min_temp: float = 16.0
    max_temp: float = 30.0
    comfort_low: float = 18.0
    comfort_high: float = 28.0
    humidity_low: float = Field(default=30.0, ge=0, le=100)
    humidity_high: float = Field(default=70.0, ge=0, le=100)
    # Occupancy and opening hours: the floor's windows and these categories (none: every
    # category served on the floor, or every category when the zone has no floor).
    floor: int | None = None
    categories: tuple[str, ...] = ()


class ClimateConfig(_Model):
    """``[climate]``: how the controller runs every zone (docs/climate.md explains each rule)."""

    tick_s: float = Field(default=30.0, ge=1, le=600)
    # China's public-building rule (国办发〔2007〕42号): cool no lower than 26 °C, heat no higher than 20 °C.
    cool_min_setpoint: float = Field(default=26.0, ge=10, le=35)
    heat_max_setpoint: float = Field(default=20.0, ge=5, le=30)
    hysteresis: float = Field(default=0.5, gt=0, le=5)
    # In auto, let the room ride the comfort band (drift to the edge nearer outdoors, then a
    # full-capacity swing and off) instead of holding a setpoint at part load; docs/climate.md rule 5.
    ride_band: bool = True
    humidity_hysteresis: float = Field(default=5.0, gt=0, le=30)
    # 420 + 480 s: at most 3600 / 900 = 4 compressor starts an hour, whatever the room does.
    min_on_s: float = Field(default=420.0, ge=0, le=3600)
    min_off_s: float = Field(default=480.0, ge=0, le=3600)
    setback_low: float = Field(default=12.0, ge=0, le=30)  # outside hours: heat only below this
    setback_high: float = Field(default=32.0, ge=15, le=45)  # outside hours: cool only above this
    precondition_max_minutes: float = Field(default=180.0, ge=0, le=24 * 60)
    precondition_margin_minutes: float = Field(default=10.0, ge=0, le=240)
    # Pre-conditioning is planned at this share of the learned rate, the units following a setpoint
    # that moves along that line to opening: an inverter then runs at part load, where it is most
    # efficient (1: full capacity from the last moment, as before). docs/climate.md rule 7.
    precondition_part_load: float = Field(default=0.6, gt=0, le=1)
    default_warmup_c_per_h: float = Field(default=3.0, gt=0, le=30)
    default_cooldown_c_per_h: float = Field(default=3.0, gt=0, le=30)
    rate_min_c_per_h: float = Field(default=0.3, gt=0, le=30)
    rate_max_c_per_h: float = Field(default=12.0, gt=0, le=60)
    rate_alpha: float = Field(default=0.3, gt=0, le=1)
    reading_max_age_s: float = Field(default=900.0, gt=0)
    busy_people: int = Field(default=20, ge=1, le=10000)
    occupancy_bias: float = Field(default=0.5, ge=0, le=3)
    ack_timeout_s: float = Field(default=15.0, gt=0, le=300)
    holidays: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _ranges(self) -> ClimateConfig:
        if self.heat_max_setpoint > self.cool_min_setpoint:
            raise ValueError(
                f"heat_max_setpoint = {self.heat_max_setpoint}: above cool_min_setpoint {self.cool_min_setpoint}"
                " (heating and cooling would fight)"
            )
        if self.setback_low >= self.setback_high:
            raise ValueError(f"setback_low = {self.setback_low}: not below setback_high {self.setback_high}")
        if self.rate_min_c_per_h > self.rate_max_c_per_h:
            raise ValueError(f"rate_min_c_per_h = {self.rate_min_c_per_h}: above rate_max_c_per_h")
        return self


def _mqtt_topic(v: str) -> str:
    for bad in ("#", "+", "\0"):
        if bad in v:
            raise ValueError(f"must not contain {bad!r}: it is a command/state topic, not a filter")
    if not v or v.startswith("$") or "" in v.split("/"):
        raise ValueError("must be a topic with no empty levels and not a broker system topic")
    return v


class _ClimateUnitBase(_Model):
    id: Slug
    zone: str
    name: str = ""
    # Rated electrical input at full load, per mode: run time × part load × these give the estimated kWh
    # (hallctl.climate.energy); 0 leaves the unit out of the energy figures.
    rated_cooling_kw: float = Field(default=0.0, ge=0, le=1000)
    rated_heating_kw: float = Field(default=0.0, ge=0, le=1000)
    # The maker's part-load table: [load, input power] pairs as fractions of full load, e.g.
    # [[0.25, 0.25], [0.5, 0.4], [0.75, 0.6], [1.0, 1.0]] for an inverter whose COP is best at
    # half load. Between points the power is interpolated; empty: power proportional to load.
    part_load_power: tuple[tuple[float, float], ...] = ()
    simulate: bool = False

    @field_validator("part_load_power")
    @classmethod
    def _part_load_table(cls, v: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        loads = [load for load, _ in v]
        for load, power in v:
            if not 0 < load <= 1 or not 0 < power <= 1.5:
                raise ValueError(f"[{load}, {power}]: load must be in (0, 1] and power in (0, 1.5]")
        if loads != sorted(set(loads)):
            raise ValueError("loads must increase from one pair to the next")
        if v and loads[-1] != 1.0:
            raise ValueError("the table must end at full load (1.0)")
        return v


class ModbusUnitConfig(_ClimateUnitBase):
    """An indoor unit behind a Modbus gateway (RTU on a serial port, or ``tcp://host:port``)."""

    kind: Literal["modbus"]
    port: str | None = None
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "E"
    address: int = Field(default=1, ge=1, le=247)  # the gateway's slave id
    indoor_unit: int = Field(default=0, ge=0, le=255)  # the unit's index in the gateway's layout
    profile: str = Field(default="generic", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")

    @model_validator(mode="after")
    def _port(self) -> ModbusUnitConfig:
        if not self.simulate and not self.port:
            raise ValueError("a real modbus unit needs 'port' (serial path or tcp://host:port), or simulate = true")
        return self


class BacnetUnitConfig(_ClimateUnitBase):
    """A BMS point set on BACnet/IP: written at ``priority``, relinquished on release."""

    kind: Literal["bacnet"]
    address: str | None = None  # host[:port] of the device
    # Where hallctl's own BACnet/IP application listens: one per local address, shared by its units.
    local_address: str = Field(default="0.0.0.0:47808", pattern=r"^[0-9.]+(:[0-9]{1,5})?$")
    device_instance: int = Field(ge=0, le=4194302)
    # 1 and 2 are life safety and 5/6 the BMS's own equipment protection: hallctl writes below them.
    priority: int = Field(default=8, ge=7, le=16)
    points: dict[Literal["power", "mode", "setpoint", "fan", "room_temperature", "error"], str] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _address(self) -> BacnetUnitConfig:
        if not self.simulate and not self.address:
            raise ValueError("a real bacnet unit needs 'address' (host[:port]), or simulate = true")
        return self


class MqttUnitConfig(_ClimateUnitBase):
    """An air conditioner already on MQTT: zigbee2mqtt (``<base>/<name>/set``) or an HA MQTT climate."""

    kind: Literal["mqtt"]
    style: Literal["zigbee2mqtt", "homeassistant"] = "zigbee2mqtt"
    command_topic: str
    state_topic: str
    # homeassistant style: the device's retained online/offline topic (HA's availability_topic); a unit
    # reporting offline is climate_unit_no_ack. Unset: none (HA has no "get"; the retained state is all).
    availability_topic: str | None = None

    @field_validator("command_topic", "state_topic")
    @classmethod
    def _topics(cls, v: str) -> str:
        return _mqtt_topic(v)

    @field_validator("availability_topic")
    @classmethod
    def _availability(cls, v: str | None) -> str | None:
        return None if v is None else _mqtt_topic(v)


ClimateUnitConfig = Annotated[ModbusUnitConfig | BacnetUnitConfig | MqttUnitConfig, Field(discriminator="kind")]


class StaffConfig(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1)
    badge: str | None = Field(default=None, pattern=r"^[0-9A-F]{4,32}$")
    department: str | None = Field(default=None, min_length=1, max_length=64)  # 进驻部门, for reports


# The figures the 日公示 board may show (``[board] columns``), in its order.
BoardColumn = Literal[
    "issued",
    "served",
    "no_show",
    "avg_wait_s",
    "p90_wait_s",
    "avg_service_s",
    "service_level",
    "satisfaction",
    "bad_ratings",
]
BOARD_COLUMNS: tuple[str, ...] = get_args(BoardColumn)


class BoardConfig(_Model):
    """``[board]``: what the public 日公示 page (``/board``) shows of the daily and monthly reports."""

    columns: tuple[BoardColumn, ...] = (
        "served",
        "avg_wait_s",
        "service_level",
        "satisfaction",
        "bad_ratings",
    )
    show_staff_names: bool = True  # the per-staff table; off: windows only
    charts: bool = True  # waiting time by hour, calls per window, ratings


class BadRatingReason(_Model):
    """A reason the pad page offers after a 差评; ``name`` is what the case keeps."""

    name: str = Field(min_length=1, max_length=16)
    name_en: str = Field(min_length=1, max_length=48)


# Reasons a visitor may give for a 差评 on the pad, after the national 政务服务"好差评" practice.
DEFAULT_BAD_RATING_REASONS: tuple[BadRatingReason, ...] = (
    BadRatingReason(name="办事效率低", name_en="Slow service"),
    BadRatingReason(name="服务态度差", name_en="Poor attitude"),
    BadRatingReason(name="办事指南不清晰", name_en="Unclear guidance"),
    BadRatingReason(name="多次跑动", name_en="Had to come more than once"),
    BadRatingReason(name="其他", name_en="Other"),
)


class SupervisionConfig(_Model):
    check_interval_s: float = Field(default=30.0, gt=0)
    wait_alert_minutes: float | None = Field(default=None, gt=0)  # default: 2 x category target
    # An alert left unacknowledged this long goes one level up (again after each further period).
    escalate_after_s: float = Field(default=900.0, gt=0, le=7 * 86400)
    escalate_max_level: int = Field(default=2, ge=0, le=10)
    # A window paused, or with nobody signed in, this long while one of its categories is open (0: never).
    window_paused_alert_minutes: int = Field(default=15, ge=0, le=24 * 60)
    window_unstaffed_alert_minutes: int = Field(default=10, ge=0, le=24 * 60)
    # 好差评 follow-up (核实整改): the reasons the pad offers for a 差评, and the working days to close a case.
    bad_rating_reasons: tuple[BadRatingReason, ...] = Field(
        default=DEFAULT_BAD_RATING_REASONS, min_length=1, max_length=8
    )
    case_working_days: int = Field(default=15, ge=1, le=60)
    # Resolved alerts and closed 好差评 cases are kept this long (for audits and year-on-year
    # reports), then deleted by the hourly retention pass; open ones are never deleted.
    keep_days: int = Field(default=1095, ge=365, le=3650)

    @field_validator("bad_rating_reasons")
    @classmethod
    def _unique_reasons(cls, v: tuple[BadRatingReason, ...]) -> tuple[BadRatingReason, ...]:
        names = [r.name for r in v]
        if len(set(names)) != len(names):
            raise ValueError("duplicate reason name")
        return v


class SensorsConfig(_Model):
    """How readings become live state and history (all sensors; deadbands also per sensor)."""

    deadband_temperature: float = Field(default=0.1, ge=0, le=10)  # °C
    deadband_humidity: float = Field(default=1.0, ge=0, le=50)  # %RH
    republish_s: float = Field(default=60.0, gt=0, le=86400)  # a steady sensor's state is re-sent this often
    flush_s: float = Field(default=60.0, ge=1, le=3600)  # finished minutes are written this often
    history_days: int = Field(default=400, ge=1, le=3650)
    # Sensor messages waiting in the MQTT client beyond this are dropped (counted), so they
    # can never hold up a `cmd/` message behind them.
    max_backlog: int = Field(default=2000, ge=10, le=1_000_000)


class PrivacyConfig(_Model):
    retention_days: int = Field(default=30, ge=1, le=3650)
    print_masked_name: bool = True
    store_photo: bool = False
    qr_token_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)


class AdminConfig(_Model):
    """``[admin]``: the admin console's logins and its audit log (docs/admin.md)."""

    # Failed logins in a row (password or TOTP) that lock an account, and for how long.
    lockout_failures: int = Field(default=5, ge=1, le=100)
    lockout_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    # A console session ends after this long without a request, and this long after login whatever happens.
    session_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    session_max_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    # Audit rows are kept at least six months (网络安全法 art. 21): the floor is 183 days.
    audit_retention_days: int = Field(default=400, ge=183, le=3650)
    # Every account must enrol a TOTP second factor before it may change anything (等保 level 3).
    require_totp: bool = False


class ScreenConfig(_Model):
    announce_repeat: int = Field(default=2, ge=1, le=5)
    voice: Literal["browser", "wav", "auto"] = "auto"
    # The daemon's WAV cache: bounded in files and bytes, and never rendered into the database's last free space.
    voice_cache_dir: str | None = None  # default: <state dir>/voice
    voice_cache_mb: float = Field(default=20.0, gt=0, le=4096)
    voice_cache_files: int = Field(default=500, ge=1, le=100000)
    voice_reserve_mb: float = Field(default=50.0, ge=0, le=1024 * 1024)
    # How the voice reads ticket numbers: "digits" (A零零一号) or "whole" (A一号); windows always as numbers.
    number_reading: Literal["digits", "whole"] = "digits"
    voice_rate: int = Field(default=150, ge=80, le=300)  # words per minute
    chime: bool = True  # 叮咚 before each announcement


class CityConfig(_Model):
    """The city feed (docs/city.md): the event log, row by row, to ``hallctl/<hall>/event/log`` for the central."""

    feed: bool = False
    batch: int = Field(default=200, ge=1, le=10000)  # rows read from the event log at a time
    # One replay request serves at most this many rows; a larger range is asked again by the central.
    replay_max: int = Field(default=5000, ge=1, le=1_000_000)
    replay_rate: float = Field(default=1000.0, gt=0, le=100000)  # replayed rows a second, at most
    replay_queue: int = Field(default=16, ge=1, le=1000)  # waiting replay requests; more are refused (busy)
    cursor_save_s: float = Field(default=5.0, gt=0, le=3600)  # after a crash at most this much is re-sent


# category_by_prefix is called several times per ticket (issue 12's profile: the scan was 2.5 % of
# the loop), so each tuple of categories gets a dict, built once. Kept beside the model, keyed by
# the tuple's id with the tuple itself (so the id is not reused while the entry lives): a pydantic
# private attribute costs more to read than the scan did, and a model_copy with new categories
# brings a new tuple, so no index goes stale. Few configs live at once (a reconfigure makes one).
_PREFIX_INDEXES: dict[int, tuple[tuple[CategoryConfig, ...], dict[str, CategoryConfig]]] = {}


def _prefix_index(categories: tuple[CategoryConfig, ...]) -> dict[str, CategoryConfig]:
    hit = _PREFIX_INDEXES.get(id(categories))
    if hit is not None and hit[0] is categories:
        return hit[1]
    by: dict[str, CategoryConfig] = {}
    for c in categories:
        by.setdefault(c.prefix, c)  # the first category of a prefix wins, as the scan's did
    if len(_PREFIX_INDEXES) >= 16:
        del _PREFIX_INDEXES[next(iter(_PREFIX_INDEXES))]
    _PREFIX_INDEXES[id(categories)] = (categories, by)
    return by


class Config(_Model):
    hall: HallConfig
    store: StoreConfig = StoreConfig()
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig = MqttConfig()
    queue: QueueConfig = QueueConfig()
    category: tuple[CategoryConfig, ...] = Field(min_length=1)
    window: tuple[WindowConfig, ...] = ()
    kiosk: tuple[KioskConfig, ...] = ()
    device: tuple[DeviceConfig, ...] = ()
    sensor: tuple[SensorConfig, ...] = ()
    climate_zone: tuple[ClimateZoneConfig, ...] = ()
    climate: ClimateConfig = ClimateConfig()
    climate_unit: tuple[ClimateUnitConfig, ...] = ()
    sensors: SensorsConfig = SensorsConfig()
    staff: tuple[StaffConfig, ...] = ()
    supervision: SupervisionConfig = SupervisionConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    screen: ScreenConfig = ScreenConfig()
    calendar: CalendarConfig = CalendarConfig()
    appointments: AppointmentsConfig = AppointmentsConfig()
    guide: GuideConfig = GuideConfig()
    board: BoardConfig = BoardConfig()
    city: CityConfig = CityConfig()
    admin: AdminConfig = AdminConfig()

    @model_validator(mode="after")
    def _references(self) -> Config:
        errors: list[str] = []
        prefixes: dict[str, int] = {}
        for i, c in enumerate(self.category):
            if c.prefix in prefixes:
                errors.append(f"category[{i}].prefix = {c.prefix!r}: clashes with category[{prefixes[c.prefix]}]")
            prefixes.setdefault(c.prefix, i)
        devices: dict[str, DeviceConfig] = {}
        for i, d in enumerate(self.device):
            if d.id in devices:
                errors.append(f"device[{i}].id = {d.id!r}: duplicate device id")
            devices.setdefault(d.id, d)

        def ref(path: str, dev_id: str | None, kinds: tuple[str, ...]) -> None:
            if dev_id is None:
                return
            dev = devices.get(dev_id)
            if dev is None:
                errors.append(f"{path} = {dev_id!r}: no [[device]] with this id")
            elif dev.kind not in kinds:
                errors.append(f"{path} = {dev_id!r}: device is a {dev.kind}, expected {'/'.join(kinds)}")

        numbers: dict[int, int] = {}
        for i, w in enumerate(self.window):
            if w.number in numbers:
                errors.append(
                    f"window[{i}].number = {w.number}: duplicate window number (also window[{numbers[w.number]}])"
                )
            numbers.setdefault(w.number, i)
            for j, cat in enumerate(w.categories):
                if cat not in prefixes:
                    errors.append(f"window[{i}].categories[{j}] = {cat!r}: unknown category")
            if len(set(w.categories)) != len(w.categories):
                errors.append(f"window[{i}].categories = {list(w.categories)!r}: listed twice")
            ref(f"window[{i}].led", w.led, ("led_bus",))
            ref(f"window[{i}].pad", w.pad, ("evalpad",))
            ref(f"window[{i}].badge_reader", w.badge_reader, ("badge",))
            if w.led is not None and w.led_address is None:
                errors.append(f"window[{i}].led_address: required when 'led' is set")
        kiosks: set[str] = set()
        for i, k in enumerate(self.kiosk):
            if k.id in kiosks:
                errors.append(f"kiosk[{i}].id = {k.id!r}: duplicate kiosk id")
            kiosks.add(k.id)
            for j, cat in enumerate(k.categories):
                if cat not in prefixes:
                    errors.append(f"kiosk[{i}].categories[{j}] = {cat!r}: unknown category")
            ref(f"kiosk[{i}].reader", k.reader, ("idcard",))
            ref(f"kiosk[{i}].printer", k.printer, ("printer",))
        if self.guide.kiosk is not None:
            desk = self.kiosk_by_id(self.guide.kiosk)
            if desk is None:
                errors.append(f"guide.kiosk = {self.guide.kiosk!r}: no [[kiosk]] with this id")
            elif desk.printer is None:
                errors.append(f"guide.kiosk = {self.guide.kiosk!r}: that kiosk has no printer")
        sensors: set[str] = set()
        for i, s in enumerate(self.sensor):
            if s.id in sensors:
                errors.append(f"sensor[{i}].id = {s.id!r}: duplicate sensor id")
            sensors.add(s.id)
            if s.source == "modbus":
                ref(f"sensor[{i}].device", s.device, ("modbus_sensor",))
        for i, z in enumerate(self.climate_zone):
            for j, sid in enumerate(z.sensors):
                if sid not in sensors:
                    errors.append(f"climate_zone[{i}].sensors[{j}] = {sid!r}: unknown sensor")
        self._more_references(errors)
        badges: set[str] = set()
        for i, person in enumerate(self.staff):
            if person.badge and person.badge in badges:
                errors.append(f"staff[{i}].badge = {person.badge!r}: badge already assigned")
            if person.badge:
                badges.add(person.badge)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _more_references(self, errors: list[str]) -> None:
        """Checks that need several tables at once: shared devices, clashing addresses, bad ranges."""
        for table, ids in (("staff", [s.id for s in self.staff]), ("climate_zone", [z.id for z in self.climate_zone])):
            seen: set[str] = set()
            for i, item_id in enumerate(ids):
                if item_id in seen:
                    errors.append(f"{table}[{i}].id = {item_id!r}: duplicate id")
                seen.add(item_id)
        led_slots: dict[tuple[str, int], int] = {}
        for i, w in enumerate(self.window):
            if w.led is not None and w.led_address is not None:
                slot = (w.led, w.led_address)
                if slot in led_slots:
                    errors.append(
                        f"window[{i}].led_address = {w.led_address}: already used on {w.led} by "
                        f"window {led_slots[slot]}"
                    )
                led_slots.setdefault(slot, w.number)
        users: dict[str, str] = {}
        for path, dev_id in (
            [(f"kiosk[{i}].reader", k.reader) for i, k in enumerate(self.kiosk)]
            + [(f"kiosk[{i}].printer", k.printer) for i, k in enumerate(self.kiosk)]
            + [(f"window[{i}].pad", w.pad) for i, w in enumerate(self.window)]
            + [(f"window[{i}].badge_reader", w.badge_reader) for i, w in enumerate(self.window)]
            + [(f"sensor[{i}].device", s.device) for i, s in enumerate(self.sensor) if s.source == "modbus"]
        ):
            if dev_id is None:
                continue
            if dev_id in users:
                errors.append(f"{path} = {dev_id!r}: device already used by {users[dev_id]}")
            users.setdefault(dev_id, path)
        ports: dict[str, int] = {}
        for i, d in enumerate(self.device):
            if d.simulate or not d.port:
                continue
            # Each device's driver opens its port alone; two on one line would garble each other's frames.
            if d.port in ports:
                errors.append(
                    f"device[{i}].port = {d.port!r}: also used by device[{ports[d.port]}] (one device per serial line)"
                )
            ports.setdefault(d.port, i)
        for i, z in enumerate(self.climate_zone):
            if z.min_temp > z.max_temp:
                errors.append(f"climate_zone[{i}].min_temp = {z.min_temp}: above max_temp {z.max_temp}")
            elif not z.min_temp <= z.target <= z.max_temp:
                errors.append(f"climate_zone[{i}].target = {z.target}: outside {z.min_temp}..{z.max_temp}")
            if z.comfort_low > z.comfort_high:
                errors.append(f"climate_zone[{i}].comfort_low = {z.comfort_low}: above comfort_high")
            if z.humidity_low > z.humidity_high:
                errors.append(f"climate_zone[{i}].humidity_low = {z.humidity_low}: above humidity_high")
            known = {c.prefix for c in self.category}
            for j, cat in enumerate(z.categories):
                if cat not in known:
                    errors.append(f"climate_zone[{i}].categories[{j}] = {cat!r}: unknown category")
        zones = {z.id for z in self.climate_zone}
        unit_ids: dict[str, int] = {}
        for i, u in enumerate(self.climate_unit):
            if u.id in unit_ids:
                errors.append(f"climate_unit[{i}].id = {u.id!r}: duplicate id (also climate_unit[{unit_ids[u.id]}])")
            unit_ids.setdefault(u.id, i)
            if u.zone not in zones:
                errors.append(f"climate_unit[{i}].zone = {u.zone!r}: no [[climate_zone]] with this id")

    # Lookups used everywhere; computed, not stored, so the model stays the single truth.
    def category_by_prefix(self, prefix: str) -> CategoryConfig | None:
        return _prefix_index(self.category).get(prefix)

    def window_by_number(self, number: int) -> WindowConfig | None:
        return next((w for w in self.window if w.number == number), None)

    def kiosk_by_id(self, kiosk_id: str) -> KioskConfig | None:
        return next((k for k in self.kiosk if k.id == kiosk_id), None)

    def device_by_id(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.device if d.id == device_id), None)

    def staff_by_badge(self, uid: str) -> StaffConfig | None:
        return next((s for s in self.staff if s.badge == uid.upper()), None)

    def staff_by_id(self, staff_id: str) -> StaffConfig | None:
        return next((s for s in self.staff if s.id == staff_id), None)


def key_path(loc: tuple[int | str, ...]) -> str:
    """``("device", 2, "baudrate")`` → ``device[2].baudrate``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _mask_url(value: Any) -> Any:
    if isinstance(value, str) and "@" in value and "://" in value:
        scheme, rest = value.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return value


def explain(err: ValidationError) -> list[str]:
    lines: list[str] = []
    for e in err.errors():
        path = key_path(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "value_error" and not path:
            # Cross-reference errors already carry their own key paths.
            lines.extend(part.strip() for part in msg.split("; "))
        elif e["type"] in ("missing",) or isinstance(e.get("input"), dict):
            lines.append(f"{path}: {msg}")
        else:
            lines.append(f"{path} = {_mask_url(e['input'])!r}: {msg}")
    return lines


def parse(data: dict[str, Any]) -> Config:
    """Validate strictly: ``port = "8780"`` or ``simulate = "yes"`` is an error, not a guess.

    JSON mode keeps strictness while accepting TOML arrays for tuples and integers for floats.
    """
    try:
        return Config.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from exc


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: TOML syntax error: {exc}"]) from exc
    return parse(data)
