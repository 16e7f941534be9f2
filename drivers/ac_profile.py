"""Declarative register profiles for Modbus air-conditioning gateways.

A gateway in front of a VRF or split system (Daikin DTA116A51, CoolMasterNet, Intesis...)
is a register map, nothing more: which table (holding, input, coil, discrete input), where
each indoor unit's registers start, and how power, mode, setpoint, fan speed, room
temperature and the error code are packed. So a new gateway is a TOML data file in
``drivers/ac_profiles/``, not code, and a wrong file is refused at start-up with the key and
the reason (``fields.setpoint.scale: must be a positive number``), never found in summer.

Shape of a profile (see ``drivers/ac_profiles/*.toml`` and docs/integrations/aircon.md)::

    [gateway]                    name, title, source, confirmed, units, setpoint_min/max,
                                 write_function (6 or 16), readback_timeout_s
    [blocks.<name>]              table = "holding"|"input"|"coil"|"discrete";
                                 base + unit_index * stride, or addresses = [...] per unit
    [fields.<power|mode|setpoint|fan|room_temperature|error_code|error_flag|running>]
        write = {block, offset, shift, width, set_bits}     (power/mode/setpoint/fan)
        read  = {block, offset, shift, width}               (defaults to write)
        values = {cool = 2, ...}   (mode, fan)   on/off     (power)
        scale, signed              (setpoint, room_temperature)
        text = "ascii_lo_hi"|"ascii_hi_lo"|"number"         (error_code)

Addresses are what goes on the wire (0-based protocol addresses), not the 4xxxx/3xxxx
"register numbers" of the manuals; each shipped profile says how it converted them.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from drivers.aircon import AC_MODES, FAN_SPEEDS, AcCapabilities, AcMode, FanSpeed

__all__ = [
    "Block",
    "Field",
    "Location",
    "ProfileError",
    "RegisterProfile",
    "Table",
    "load_profile",
    "parse_profile",
    "shipped_profiles",
]

Table = Literal["holding", "input", "coil", "discrete"]
TABLES: tuple[Table, ...] = ("holding", "input", "coil", "discrete")
WRITABLE: tuple[Table, ...] = ("holding", "coil")
ErrorText = Literal["number", "ascii_lo_hi", "ascii_hi_lo"]
FIELDS = ("power", "mode", "setpoint", "fan", "room_temperature", "error_code", "error_flag", "running")


class ProfileError(ValueError):
    """A register profile is wrong; ``key`` is the dotted path of the offending key."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """Where one indoor unit's registers of one kind start."""

    name: str
    table: Table
    base: int = 0
    stride: int = 0
    addresses: tuple[int, ...] = ()  # explicit per-unit start addresses, instead of base + stride

    def start(self, unit_index: int) -> int:
        if self.addresses:
            return self.addresses[unit_index]
        return self.base + unit_index * self.stride


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """A bit field of one register (or one coil) at ``block.start(unit) + offset``."""

    block: Block
    offset: int
    shift: int = 0
    width: int = 16
    set_bits: int = 0  # bits always set when this register is written (e.g. Daikin's 0x0060)

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    def address(self, unit_index: int) -> int:
        return self.block.start(unit_index) + self.offset

    def extract(self, register: int) -> int:
        return (register & self.mask) >> self.shift

    def insert(self, register: int, value: int) -> int:
        return (register & ~self.mask & 0xFFFF) | ((value << self.shift) & self.mask) | self.set_bits


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    name: str
    read: Location
    write: Location | None = None
    values: Mapping[str, int] = dataclasses.field(default_factory=dict)  # mode/fan: name -> raw
    scale: float = 1.0
    signed: bool = False
    text: ErrorText = "number"

    def encode_number(self, value: float) -> int:
        raw = round(value * self.scale)
        return raw & ((1 << self.write_width) - 1) if self.signed else raw

    @property
    def write_width(self) -> int:
        return (self.write or self.read).width

    def decode_number(self, raw: int) -> float:
        width = self.read.width
        if self.signed and raw & (1 << (width - 1)):
            raw -= 1 << width
        return raw / self.scale

    def decode_value(self, raw: int) -> str | None:
        for name, code in self.values.items():
            if code == raw:
                return name
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class RegisterProfile:
    """A validated gateway profile; every field the driver needs is present and consistent."""

    name: str
    title: str
    source: str
    confirmed: str
    units: int
    setpoint_min: float
    setpoint_max: float
    write_function: int
    readback_timeout_s: float
    blocks: Mapping[str, Block]
    power: Field
    mode: Field
    setpoint: Field
    fan: Field
    room_temperature: Field | None = None
    error_code: Field | None = None
    error_flag: Field | None = None
    running: Field | None = None  # the compressor's thermo-on bit, where the gateway reports it (non-zero: on)
    power_on: int = 1
    power_off: int = 0

    @property
    def capabilities(self) -> AcCapabilities:
        return AcCapabilities(
            modes=tuple(m for m in AC_MODES if m in self.mode.values),
            fans=tuple(f for f in FAN_SPEEDS if f in self.fan.values),
            setpoint_min=self.setpoint_min,
            setpoint_max=self.setpoint_max,
            reports_room_temperature=self.room_temperature is not None,
            reports_errors=self.error_code is not None,
        )

    def mode_name(self, raw: int) -> AcMode | None:
        name = self.mode.decode_value(raw)
        return name if name in AC_MODES else None

    def fan_name(self, raw: int) -> FanSpeed | None:
        name = self.fan.decode_value(raw)
        return name if name in FAN_SPEEDS else None


# -- loading --------------------------------------------------------------------------------------


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in ``drivers/ac_profiles/`` (``load_profile(name)`` loads one)."""
    folder = resources.files("drivers") / "ac_profiles"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path) -> RegisterProfile:
    """A shipped profile by name (``"daikin_dta116a51"``) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_absolute() or "/" in str(name_or_path):
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        resource = resources.files("drivers") / "ac_profiles" / f"{name_or_path}.toml"
        if not resource.is_file():
            known = ", ".join(shipped_profiles())
            raise ProfileError(str(name_or_path), "profile", f"no shipped profile of that name (known: {known})")
        text = resource.read_text(encoding="utf-8")
        source = f"{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(source, "toml", str(exc)) from exc
    return parse_profile(data, source)


class _Reader:
    """Typed access to the TOML tree that names the dotted key in every complaint."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> ProfileError:
        return ProfileError(self.source, key, reason)

    def table(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> dict[str, Any] | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"{path}{key}", "missing")
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{path}{key}", "must be a table")
        return value

    def int_(self, data: Mapping[str, Any], key: str, path: str, default: int | None = None, lo: int = 0) -> int:
        value = data.get(key, default)
        if value is None:
            raise self.fail(f"{path}{key}", "missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{path}{key}", f"must be an integer, not {value!r}")
        if value < lo:
            raise self.fail(f"{path}{key}", f"must be >= {lo}, not {value}")
        return value

    def number(self, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{path}{key}", f"must be a number, not {value!r}")
        return float(value)

    def str_(self, data: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if value is None:
            raise self.fail(f"{path}{key}", "missing")
        if not isinstance(value, str):
            raise self.fail(f"{path}{key}", f"must be a string, not {value!r}")
        return value

    def unknown(self, data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(f"{path}{key}", f"unknown key (allowed: {', '.join(allowed)})")


def _block(r: _Reader, name: str, data: dict[str, Any], units: int) -> Block:
    path = f"blocks.{name}."
    r.unknown(data, ("table", "base", "stride", "addresses"), path)
    table = r.str_(data, "table", path)
    if table not in TABLES:
        raise r.fail(f"{path}table", f"must be one of {', '.join(TABLES)}, not {table!r}")
    addresses = data.get("addresses")
    if addresses is not None:
        if "base" in data or "stride" in data:
            raise r.fail(f"{path}addresses", "give either addresses or base/stride, not both")
        if not isinstance(addresses, list) or not all(isinstance(a, int) and 0 <= a <= 0xFFFF for a in addresses):
            raise r.fail(f"{path}addresses", "must be a list of register addresses 0..65535")
        if len(addresses) < units:
            raise r.fail(f"{path}addresses", f"lists {len(addresses)} units but gateway.units is {units}")
        return Block(name, table, addresses=tuple(addresses))
    base = r.int_(data, "base", path)
    stride = r.int_(data, "stride", path, default=0)
    if units > 1 and stride == 0:
        raise r.fail(f"{path}stride", "must be > 0 when the gateway has more than one unit")
    if base + (units - 1) * stride > 0xFFFF:
        raise r.fail(f"{path}base", f"unit {units - 1} would start past register 65535")
    return Block(name, table, base=base, stride=stride)


def _location(r: _Reader, data: Any, path: str, blocks: Mapping[str, Block], *, writing: bool) -> Location:
    if not isinstance(data, dict):
        raise r.fail(path.rstrip("."), "must be a table like {block = ..., offset = ...}")
    r.unknown(data, ("block", "offset", "shift", "width", "set_bits"), path)
    block_name = r.str_(data, "block", path)
    block = blocks.get(block_name)
    if block is None:
        raise r.fail(f"{path}block", f"no block named {block_name!r} (blocks: {', '.join(blocks)})")
    if writing and block.table not in WRITABLE:
        raise r.fail(f"{path}block", f"block {block_name!r} is a {block.table} table, which cannot be written")
    bits = block.table in ("coil", "discrete")
    offset = r.int_(data, "offset", path, default=0)
    shift = r.int_(data, "shift", path, default=0)
    width = r.int_(data, "width", path, default=1 if bits else 16, lo=1)
    set_bits = r.int_(data, "set_bits", path, default=0)
    if bits and (shift, width) != (0, 1):
        raise r.fail(f"{path}width", f"a {block.table} holds one bit: shift 0, width 1")
    if shift + width > 16:
        raise r.fail(f"{path}width", f"shift {shift} + width {width} does not fit a 16-bit register")
    if set_bits > 0xFFFF:
        raise r.fail(f"{path}set_bits", "must fit 16 bits")
    if set_bits and not writing:
        raise r.fail(f"{path}set_bits", "only a write location sets bits")
    return Location(block, offset, shift, width, set_bits)


def _field(r: _Reader, name: str, data: dict[str, Any], blocks: Mapping[str, Block]) -> Field:
    path = f"fields.{name}."
    allowed = ["read", "write"]
    if name in ("mode", "fan"):
        allowed.append("values")
    if name in ("setpoint", "room_temperature"):
        allowed += ["scale", "signed"]
    if name == "power":
        allowed += ["on", "off"]
    if name == "error_code":
        allowed.append("text")
    r.unknown(data, tuple(allowed), path)
    writable = name in ("power", "mode", "setpoint", "fan")
    write = None
    if writable:
        if "write" not in data:
            raise r.fail(f"{path}write", "missing (this field is commanded)")
        write = _location(r, data["write"], f"{path}write.", blocks, writing=True)
    elif "write" in data:
        raise r.fail(f"{path}write", "this field is only read")
    if "read" in data:
        read = _location(r, data["read"], f"{path}read.", blocks, writing=False)
    elif write is not None:
        read = dataclasses.replace(write, set_bits=0)
    else:
        raise r.fail(f"{path}read", "missing")
    values: dict[str, int] = {}
    if name in ("mode", "fan"):
        table = r.table(data, "values", path)
        assert table is not None
        vocabulary: tuple[str, ...] = AC_MODES if name == "mode" else FAN_SPEEDS
        for key in table:
            if key not in vocabulary:
                raise r.fail(f"{path}values.{key}", f"not a {name} hallctl knows ({', '.join(vocabulary)})")
            values[key] = r.int_(table, key, f"{path}values.")
            for loc in (write, read):
                if loc is not None and values[key] >= 1 << loc.width:
                    raise r.fail(f"{path}values.{key}", f"{values[key]} does not fit {loc.width} bit(s)")
        if len(set(values.values())) != len(values):
            raise r.fail(f"{path}values", "two names share one raw value, so a read-back would be ambiguous")
        if not values:
            raise r.fail(f"{path}values", "empty")
    scale = r.number(data, "scale", path, 1.0)
    if scale <= 0:
        raise r.fail(f"{path}scale", "must be a positive number")
    signed = data.get("signed", False)
    if not isinstance(signed, bool):
        raise r.fail(f"{path}signed", "must be true or false")
    text = r.str_(data, "text", path, "number")
    if text not in ("number", "ascii_lo_hi", "ascii_hi_lo"):
        raise r.fail(f"{path}text", f"must be number, ascii_lo_hi or ascii_hi_lo, not {text!r}")
    return Field(name, read, write, values, scale, signed, cast(ErrorText, text))


def parse_profile(data: Mapping[str, Any], source: str = "<profile>") -> RegisterProfile:
    """Validate a decoded TOML profile; :class:`ProfileError` names the key and the reason."""
    r = _Reader(source)
    r.unknown(data, ("gateway", "blocks", "fields"), "")
    gw = r.table(data, "gateway", "")
    assert gw is not None
    r.unknown(
        gw,
        (
            "name",
            "title",
            "source",
            "confirmed",
            "units",
            "setpoint_min",
            "setpoint_max",
            "write_function",
            "readback_timeout_s",
        ),
        "gateway.",
    )
    units = r.int_(gw, "units", "gateway.", default=1, lo=1)
    write_function = r.int_(gw, "write_function", "gateway.", default=6)
    if write_function not in (6, 16):
        raise r.fail(
            "gateway.write_function", f"must be 6 (write single register) or 16 (write multiple), not {write_function}"
        )
    setpoint_min = r.number(gw, "setpoint_min", "gateway.", 16.0)
    setpoint_max = r.number(gw, "setpoint_max", "gateway.", 32.0)
    if setpoint_min >= setpoint_max:
        raise r.fail("gateway.setpoint_max", "must be above setpoint_min")
    readback = r.number(gw, "readback_timeout_s", "gateway.", 5.0)
    if readback < 0:
        raise r.fail("gateway.readback_timeout_s", "must be >= 0")
    blocks_data = r.table(data, "blocks", "")
    assert blocks_data is not None
    blocks: dict[str, Block] = {}
    for name, block in blocks_data.items():
        if not isinstance(block, dict):
            raise r.fail(f"blocks.{name}", "must be a table")
        blocks[name] = _block(r, name, block, units)
    fields_data = r.table(data, "fields", "")
    assert fields_data is not None
    r.unknown(fields_data, FIELDS, "fields.")
    fields: dict[str, Field] = {}
    for name in FIELDS:
        table = r.table(fields_data, name, "fields.", required=name in ("power", "mode", "setpoint", "fan"))
        if table is not None:
            fields[name] = _field(r, name, table, blocks)
    power_table = fields_data["power"]
    power_width = fields["power"].write_width
    power_on = r.int_(power_table, "on", "fields.power.", default=1)
    power_off = r.int_(power_table, "off", "fields.power.", default=0)
    if power_on == power_off:
        raise r.fail("fields.power.on", "on and off must differ")
    if max(power_on, power_off) >= 1 << power_width:
        raise r.fail("fields.power.on", f"does not fit {power_width} bit(s)")
    return RegisterProfile(
        name=r.str_(gw, "name", "gateway."),
        title=r.str_(gw, "title", "gateway.", ""),
        source=r.str_(gw, "source", "gateway.", ""),
        confirmed=r.str_(gw, "confirmed", "gateway.", "no"),
        units=units,
        setpoint_min=setpoint_min,
        setpoint_max=setpoint_max,
        write_function=write_function,
        readback_timeout_s=readback,
        blocks=blocks,
        power=fields["power"],
        mode=fields["mode"],
        setpoint=fields["setpoint"],
        fan=fields["fan"],
        room_temperature=fields.get("room_temperature"),
        error_code=fields.get("error_code"),
        error_flag=fields.get("error_flag"),
        running=fields.get("running"),
        power_on=power_on,
        power_off=power_off,
    )
