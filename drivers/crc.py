"""CRC-16 variants used on hall serial lines.

hallctl's own display/pad frame and Modbus RTU both use CRC-16/MODBUS; Onbon
BX controllers use CRC-16/ARC (same reflected polynomial, different start
value). Table-driven because frames are checked on every received byte burst.
"""

from __future__ import annotations

BytesLike = bytes | bytearray | memoryview


def _make_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE_A001 = _make_table(0xA001)


def _crc16_reflected(data: BytesLike, init: int) -> int:
    crc = init
    for byte in memoryview(data).cast("B"):
        crc = (crc >> 8) ^ _TABLE_A001[(crc ^ byte) & 0xFF]
    return crc


def crc16_modbus(data: BytesLike) -> int:
    """CRC-16/MODBUS (init ``FFFF``, reflected poly ``A001``); sent low byte first."""
    return _crc16_reflected(data, 0xFFFF)


def crc16_arc(data: BytesLike) -> int:
    """CRC-16/ARC (init ``0000``, reflected poly ``A001``), as Onbon BX frames use."""
    return _crc16_reflected(data, 0x0000)
