"""The number high-water file survives a write cut short, and reads the layout older versions wrote.

What a hall relies on: no ticket number is ever handed out twice. The file beside the database
holds, per day and category, the highest number acknowledged; each raise rewrites the older of
its two slots in place. A power cut in the middle of that write must leave marks that still
cover every number acknowledged before it (the batch being written was not answered yet).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from hallctl.store.integrity import SLOT_MIN, HighWater

DAY = date(2026, 11, 30)


def raised(db: Path, *steps: int) -> HighWater:
    hwm = HighWater(str(db))
    hwm.load()
    for n in steps:
        hwm.raise_to({(DAY, "A"): n})
    return hwm


def test_each_raise_is_read_back_by_a_new_process(tmp_path: Path) -> None:
    db = tmp_path / "hall.db"
    hwm = raised(db, 3, 7, 12, 20)
    hwm.close()
    assert HighWater(str(db)).load() == {(DAY, "A"): 20}
    assert os.stat(db.with_name("hall.db.hwm")).st_mode & 0o777 == 0o600


def test_a_write_cut_short_leaves_the_marks_before_it(tmp_path: Path) -> None:
    """The newest slot half written (a power cut): the other slot's marks are read, with no error."""
    db = tmp_path / "hall.db"
    hwm = raised(db, 5, 9)  # 5: a new file, both slots; 9: written in place into one of them
    path = hwm.path
    before = path.read_bytes()
    hwm.raise_to({(DAY, "A"): 14})  # in place, into the other slot
    hwm.close()
    after = path.read_bytes()
    changed = [
        i for i in range(2) if before[i * SLOT_MIN : (i + 1) * SLOT_MIN] != after[i * SLOT_MIN : (i + 1) * SLOT_MIN]
    ]
    assert len(changed) == 1 and len(after) == len(before)  # one slot rewritten where it lies
    start = changed[0] * SLOT_MIN
    torn = bytearray(after)
    torn[start + 40 : start + SLOT_MIN] = before[start + 40 : start + SLOT_MIN]  # only its first bytes landed
    path.write_bytes(bytes(torn))
    fresh = HighWater(str(db))
    assert fresh.load() == {(DAY, "A"): 9} and fresh.last_error is None


def test_both_slots_damaged_is_reported_and_numbering_falls_back_to_the_database(tmp_path: Path) -> None:
    db = tmp_path / "hall.db"
    raised(db, 5, 9).close()
    path = db.with_name("hall.db.hwm")
    path.write_bytes(b"\xff" * len(path.read_bytes()))
    fresh = HighWater(str(db))
    assert fresh.load() == {} and fresh.last_error is not None and "unreadable" in fresh.last_error


def test_the_file_an_older_version_wrote_is_read_and_then_rewritten_in_slots(tmp_path: Path) -> None:
    db = tmp_path / "hall.db"
    path = db.with_name("hall.db.hwm")
    path.write_text(json.dumps({DAY.isoformat(): {"A": 41, "B": 7}}), encoding="utf-8")
    hwm = HighWater(str(db))
    assert hwm.load() == {(DAY, "A"): 41, (DAY, "B"): 7}
    hwm.raise_to({(DAY, "A"): 42})
    hwm.close()
    assert len(path.read_bytes()) == 2 * SLOT_MIN
    assert HighWater(str(db)).load() == {(DAY, "A"): 42, (DAY, "B"): 7}


def test_marks_that_outgrow_a_slot_get_a_larger_file(tmp_path: Path) -> None:
    db = tmp_path / "hall.db"
    hwm = raised(db, 1)
    many = {(DAY, f"C{i:03d}"): 1000 + i for i in range(600)}  # ~9 KiB of JSON: more than a slot holds
    hwm.raise_to(many)
    hwm.raise_to({(DAY, "C000"): 5000})  # and in place in the larger slots
    hwm.close()
    assert len(hwm.path.read_bytes()) > 2 * SLOT_MIN
    loaded = HighWater(str(db)).load()
    assert loaded[(DAY, "C000")] == 5000 and loaded[(DAY, "C599")] == 1599 and loaded[(DAY, "A")] == 1
