"""Bad files built on the fly for the tests: real bytes on disk, as a user would have them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def truncated_jpeg(path: Path, size: tuple[int, int] = (120, 100), keep: float = 0.5) -> Path:
    """A noisy JPEG of ``size = (height, width)`` cut after ``keep`` of its bytes: OpenCV
    decodes it into a partly grey picture with only a libjpeg warning."""
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width x height`` pixels (its data is far shorter):
    decoding it would try to allocate the claimed size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
