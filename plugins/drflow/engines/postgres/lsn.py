"""WAL positions (LSNs) and segment file names, as PostgreSQL writes them. Pure functions."""

from __future__ import annotations

import re

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def parse_lsn(text: str) -> int:
    """``'0/3000100'`` → 50331904. ValueError with the accepted form otherwise."""
    match = _LSN.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a WAL position (LSN); write it as PostgreSQL prints it, e.g. 0/3000100")
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


def format_lsn(value: int) -> str:
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"LSN {value} is out of range")
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def segment_number(lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The number of the segment that holds the byte at ``lsn``."""
    return lsn // segment_size


def segment_start(segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return segno * segment_size


def segment_name(timeline: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """``000000010000000000000003`` for timeline 1, segment 3 (16 MiB segments)."""
    per_id = 0x100000000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def parse_segment_name(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int]:
    """``(timeline, segno)`` of a WAL segment file name; ValueError for anything else."""
    match = _SEGMENT.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a WAL segment file name (24 upper-case hex digits)")
    per_id = 0x100000000 // segment_size
    return int(match.group(1), 16), int(match.group(2), 16) * per_id + int(match.group(3), 16)


def is_segment_name(name: str) -> bool:
    return bool(_SEGMENT.match(name))
