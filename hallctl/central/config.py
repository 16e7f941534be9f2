"""The central's configuration (``central.toml``), validated at start like the hall's (docs/city.md)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from hallctl import config as hall_config
from hallctl.config import Config, ConfigError, explain

_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")  # one MQTT topic level the hall's reply namespace accepts


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CentralSection(_Model):
    # This process's name: its MQTT client id is ``hallctl-central-<id>`` and replies come back on
    # ``hallctl/<hall>/reply/central-<id>/...``; unique per process.
    id: str = "1"
    group: str = "hallctl-central"  # the shared-subscription group every ingestor of one city shares

    @field_validator("id", "group")
    @classmethod
    def _level(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("1-64 characters of A-Z a-z 0-9 _ . : @ -")
        return v


class CentralMqtt(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    keepalive: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=600)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^mqtt://([^@/]+@)?[^:/@]+(:\d{1,5})?$", v):
            raise ValueError("expected mqtt://[user:pass@]host[:port]")
        return v


class Postgres(_Model):
    # A libpq connection string: "host=/run/postgresql dbname=hallctl_city" or "postgresql://user@host/db".
    dsn: str = Field(min_length=1)
    partitions_ahead_days: int = Field(default=7, ge=1, le=366)  # daily partitions created this far ahead
    batch_max: int = Field(default=2000, ge=1, le=100000)  # rows written per INSERT at most
    flush_ms: float = Field(default=100.0, gt=0, le=10000)  # a row waits at most this long for its batch


class Gaps(_Model):
    scan_s: float = Field(default=2.0, gt=0, le=3600)  # how often the leader looks for missing seqs
    first_retry_s: float = Field(default=2.0, gt=0, le=3600)  # a gap is asked for after this, then backs off
    max_retry_s: float = Field(default=300.0, gt=0, le=86400)
    give_up_after: int = Field(default=20, ge=1, le=10000)  # requests per gap before it is recorded as lost
    max_range: int = Field(default=5000, ge=1, le=1_000_000)  # rows per replay request
    # Rows lost at the end of a hall's stream leave no gap behind them until the hall's next row; so
    # each hall is asked this often for anything after its highest stored seq (an empty answer is cheap).
    tail_probe_s: float = Field(default=60.0, gt=0, le=86400)


class Http(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)  # 0 = any free port (tests)
    # The dashboard's service level: the share of today's called tickets called within this many seconds.
    service_level_s: int = Field(default=900, ge=1, le=86400)
    band_c: float = Field(default=2.0, gt=0, le=20)  # a zone is "in band" within this of its target
    figures_s: float = Field(default=5.0, ge=0, le=3600)  # the day's stored figures are read at most this often
    timezone: str = "Asia/Shanghai"  # whose "today" the dashboard counts (the halls' business day)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return v


class HallEntry(_Model):
    id: str
    name: str = ""
    name_en: str = ""
    # The hall's own config file (relative to the central's file): its categories, targets, hours and
    # staff make the central's report of the hall the hall's own report (docs/city.md#reports).
    config: str | None = Field(default=None, min_length=1)

    @field_validator("id")
    @classmethod
    def _level(cls, v: str) -> str:
        if not _ID.match(v) or v in (".", ".."):
            raise ValueError("a hall id is one MQTT topic level: 1-64 of A-Z a-z 0-9 _ . : @ -")
        return v


class CentralConfig(_Model):
    central: CentralSection = CentralSection()
    mqtt: CentralMqtt = CentralMqtt()
    postgres: Postgres
    gaps: Gaps = Gaps()
    http: Http = Http()
    hall: tuple[HallEntry, ...] = ()  # known halls (names for the dashboard); unlisted halls appear when seen
    # The halls' own configs, loaded from ``[[hall]] config`` by :func:`load` (not a TOML key).
    _hall_configs: dict[str, Config] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> CentralConfig:
        seen: set[str] = set()
        for i, h in enumerate(self.hall):
            if h.id in seen:
                raise ValueError(f"hall[{i}].id = {h.id!r}: duplicate hall id")
            seen.add(h.id)
        if self.gaps.max_retry_s < self.gaps.first_retry_s:
            raise ValueError("gaps.max_retry_s: must not be below gaps.first_retry_s")
        return self

    def hall_config(self, hall: str) -> Config | None:
        """The hall's own config (``[[hall]] config``), None when the central was not given it."""
        return self._hall_configs.get(hall)

    def load_hall_configs(self, base: Path) -> None:
        """Load and validate every ``[[hall]] config`` (relative to ``base``); ConfigError names each bad one.

        Checked at start like every other key: a report asked a month later must not be the
        first to find the file missing, and a file of another hall (its ``[hall] id``) would
        give one hall's report the other's categories and targets.
        """
        lines: list[str] = []
        found: dict[str, Config] = {}
        for i, h in enumerate(self.hall):
            if h.config is None:
                continue
            path = base / h.config
            try:
                cfg = hall_config.load(path)
            except ConfigError as exc:
                lines.extend(f"hall[{i}].config = {h.config!r}: {line}" for line in exc.lines)
                continue
            if cfg.hall.id != h.id:
                lines.append(f"hall[{i}].config = {h.config!r}: its [hall] id is {cfg.hall.id!r}, not {h.id!r}")
                continue
            found[h.id] = cfg
        if lines:
            raise ConfigError(lines)
        self._hall_configs = found

    @property
    def client_id(self) -> str:
        return f"hallctl-central-{self.central.id}"

    @property
    def reply_client(self) -> str:
        return f"central-{self.central.id}"


def parse(data: dict[str, Any]) -> CentralConfig:
    try:
        return CentralConfig.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from exc


def load(path: str | Path) -> CentralConfig:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{p}: not a TOML file: {exc}"]) from exc
    cfg = parse(data)
    cfg.load_hall_configs(p.parent)
    return cfg
