"""CRC32C (Castagnoli), the checksum that frames every TFRecord, without TensorFlow.

Why numpy and not a byte loop: a shard record holds ~100 KB of waveform, and a pure-Python
loop over it costs ~10 ms a clip, longer than preparing the clip. CRC is linear over GF(2), so
the data is cut into 256-byte rows whose CRCs come from one table gather (a table per byte
position), and the rows' CRCs are then folded pairwise, each fold shifting the left CRC past
the right row's bytes with a 4 x 256 table. With a zero start register leading zero bytes
change nothing, which makes the padding free; the standard 0xFFFFFFFF start is the same as
inverting the first four data bytes. Where the ``google-crc32c`` or ``crc32c`` package (native
code) happens to be installed it is used instead; kser does not require either.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

POLYNOMIAL = 0x82F63B78  # Castagnoli, bit-reflected
ROW = 256  # bytes per row of the vectorized path
SMALL = 1024  # below this the byte loop is faster than numpy's call overhead
MASK_DELTA = 0xA282EAD8


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (POLYNOMIAL if crc & 1 else 0)
        table.append(crc)
    return table


TABLE = _byte_table()
_TABLE_NP = np.asarray(TABLE, dtype=np.uint32)
# Every byte value at each of a register's four byte positions: a 4 x 256 table's identity.
_UNIT = np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32)[:, None])


def crc32c_loop(data: bytes, crc: int = 0) -> int:
    """Byte-at-a-time CRC32C, continuing from ``crc`` (a previous call's result)."""
    crc ^= 0xFFFFFFFF
    table = TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _zero_byte(register: np.ndarray) -> np.ndarray:
    """Raw CRC registers after one more zero byte."""
    return _TABLE_NP[register & 0xFF] ^ (register >> 8)


def _apply(shift: np.ndarray, register: np.ndarray) -> np.ndarray:
    """``shift`` (4 x 256: one table per register byte) applied to raw CRC registers."""
    return shift[0][register & 0xFF] ^ shift[1][(register >> 8) & 0xFF] ^ shift[2][(register >> 16) & 0xFF] ^ shift[3][register >> 24]


@functools.lru_cache(maxsize=None)
def _row_table() -> np.ndarray:
    """Flat (ROW * 256) table: entry ``j * 256 + b``, the raw CRC of byte b at position j of a row."""
    rows = [_TABLE_NP]  # the last byte of a row: no zero bytes after it
    for _ in range(ROW - 1):
        rows.append(_zero_byte(rows[-1]))
    return np.concatenate(rows[::-1])


@functools.lru_cache(maxsize=None)
def _shift_table(level: int) -> np.ndarray:
    """4 x 256 table moving a raw CRC register past ``ROW * 2**level`` zero bytes."""
    if level == 0:
        register = _UNIT
        for _ in range(ROW):
            register = _zero_byte(register)
        return register
    half = _shift_table(level - 1)
    return _apply(half, _apply(half, _UNIT))


def crc32c_numpy(data: bytes) -> int:
    """CRC32C of ``data`` by table gathers and pairwise folds (see the module docstring)."""
    if len(data) < SMALL:
        return crc32c_loop(data)
    padded = np.zeros(-(-len(data) // ROW) * ROW, dtype=np.uint8)
    padded[padded.size - len(data) :] = np.frombuffer(data, dtype=np.uint8)
    padded[padded.size - len(data) : padded.size - len(data) + 4] ^= 0xFF  # the 0xFFFFFFFF start
    rows = np.add(padded.reshape(-1, ROW), np.arange(0, ROW * 256, 256, dtype=np.intp), dtype=np.intp)
    registers = np.bitwise_xor.reduce(_row_table()[rows], axis=1)
    level = 0
    while registers.size > 1:
        if registers.size % 2:
            registers = np.concatenate([np.zeros(1, dtype=np.uint32), registers])
        registers = _apply(_shift_table(level), registers[0::2]) ^ registers[1::2]
        level += 1
    return int(registers[0]) ^ 0xFFFFFFFF


def _native() -> Callable[[bytes], int] | None:
    try:
        import google_crc32c

        return google_crc32c.value
    except ImportError:
        pass
    try:
        import crc32c as crc32c_package

        return crc32c_package.crc32c
    except ImportError:
        return None


crc32c: Callable[[bytes], int] = _native() or crc32c_numpy


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits plus a constant (a CRC of CRCs stays useful)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF
