"""The config file as the console edits it: tomlkit keeps comments and layout; writes are atomic.

An edit loads the file, changes one table entry (``[[window]]`` number 3, say) or one
section's keys, validates the whole document with the same model ``hallctl check-config``
uses (:func:`hallctl.config.parse`) and only then replaces the file: written to a temporary
file beside it, fsynced, renamed over it, and the directory fsynced, so a crash leaves
either the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from hallctl import config
from hallctl.errors import NotFound, Refused

# Tables the console edits entry by entry, and each one's key.
KEYED_TABLES = {"category": "prefix", "window": "number", "staff": "id", "device": "id", "kiosk": "id"}
# Sections the console edits as a whole ([calendar]'s overrides).
SECTIONS = {"calendar": ("closed_days", "open_days")}
DATE_KEYS = {"closed_days", "open_days"}


def parse(text: str) -> tomlkit.TOMLDocument:
    return tomlkit.parse(text)


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def entry_dict(item: Table | dict[str, Any]) -> dict[str, Any]:
    return {str(k): _json_value(_plain(v)) for k, v in item.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _toml_value(key: str, v: Any) -> Any:
    if key in DATE_KEYS and isinstance(v, list):
        try:
            return [date.fromisoformat(str(x)) for x in v]
        except ValueError as exc:
            raise Refused("invalid_config", f"{key}: 日期格式应为 YYYY-MM-DD", f"{key}: dates are YYYY-MM-DD") from exc
    return v


def _entries(doc: tomlkit.TOMLDocument, table: str) -> AoT | None:
    aot = doc.get(table)
    return aot if isinstance(aot, AoT) else None


def find(doc: tomlkit.TOMLDocument, table: str, key: str) -> tuple[int, Table] | None:
    aot = _entries(doc, table)
    if aot is None:
        return None
    field = KEYED_TABLES[table]
    for i, item in enumerate(aot):
        if str(_plain(item.get(field))) == key:
            return i, item
    return None


def put_entry(
    doc: tomlkit.TOMLDocument, table: str, key: str, fields: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Change (``fields``), create, or delete (``None``) one entry; return its (before, after) as plain dicts.

    Only the keys given change: a key set to ``None`` is removed, the others keep their
    comments and places.
    """
    if table not in KEYED_TABLES:
        raise NotFound("unknown_table", f"不能编辑 {table}", f"{table} cannot be edited here")
    found = find(doc, table, key)
    if fields is None:
        if found is None:
            raise NotFound("unknown_entry", f"没有 {table} {key}", f"no {table} {key}")
        aot = _entries(doc, table)
        assert aot is not None
        before = entry_dict(found[1])
        del aot[found[0]]
        return before, None
    field = KEYED_TABLES[table]
    if table == "device" and "printer_status" in fields:
        fields = _printer_status(found[1] if found else None, fields)
    if field in fields and str(fields[field]) != key:
        raise Refused("key_changed", f"不能修改 {field}", f"{field} cannot be changed; delete and create instead")
    if found is None:
        item = tomlkit.table()
        item[field] = int(key) if table == "window" and key.isdigit() else key
        for k, v in fields.items():
            if v is not None and k != field:
                item[k] = _toml_value(k, v)
        aot = _entries(doc, table)
        if aot is None:
            doc.append(table, tomlkit.aot())
            aot = _entries(doc, table)
            assert aot is not None
        aot.append(item)
        return None, entry_dict(item)
    item = found[1]
    before = entry_dict(item)
    for k, v in fields.items():
        if k == field:
            continue
        if v is None:
            if k in item:
                del item[k]
        elif _json_value(_plain(item.get(k))) != v:
            item[k] = _toml_value(k, v)
    return before, entry_dict(item)


def _printer_status(item: Table | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The console's ``printer_status`` is the file's ``options.status``; the other options stay as they were."""
    fields = dict(fields)
    status = fields.pop("printer_status")
    options = dict(fields.get("options") or (entry_dict(item).get("options") if item is not None else None) or {})
    if status in (None, "", "query"):
        options.pop("status", None)  # "query" is the default: the key is not written
    else:
        options["status"] = status
    fields["options"] = options or None
    return fields


def put_section(
    doc: tomlkit.TOMLDocument, section: str, fields: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    if section not in SECTIONS:
        raise NotFound("unknown_table", f"不能编辑 {section}", f"{section} cannot be edited here")
    unknown = sorted(set(fields) - set(SECTIONS[section]))
    if unknown:
        raise Refused("invalid_config", f"{section} 不能修改 {unknown}", f"{section}: cannot edit {unknown}")
    tbl = doc.get(section)
    if not isinstance(tbl, Table):
        tbl = tomlkit.table()
        doc.append(section, tbl)
    before = entry_dict(tbl)
    for k, v in fields.items():
        if v is None:
            if k in tbl:
                del tbl[k]
        else:
            tbl[k] = _toml_value(k, v)
    return before, entry_dict(tbl)


def validate(doc: tomlkit.TOMLDocument) -> config.Config:
    """The same model as the config file's: a refusal names each key and the reason."""
    try:
        return config.parse(doc.unwrap())
    except config.ConfigError as exc:
        text = "; ".join(exc.lines)
        raise Refused(
            "invalid_config", f"配置无效：{text}", f"invalid configuration: {text}", {"errors": exc.lines}
        ) from exc


def write_atomic(path: Path, text: str) -> None:
    """Temporary file beside ``path``, fsync, rename over it, fsync the directory; the file's mode is kept."""
    try:
        mode: int | None = path.stat().st_mode & 0o7777
    except OSError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
