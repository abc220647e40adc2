"""Frames in and out of the ``blobs`` table (see :mod:`audit.frames` for the codecs)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import Connection, Engine

from audit import store
from audit.chain import Head
from audit.errors import NotFound
from audit.frames import EncodedFrame, apply_tiles, encode, open_png, png_bytes
from sandbox.base import Frame

_CACHE_SIZE = 8


@dataclass(slots=True)
class _Base:
    """The last frame this process stored, which the next one is diffed against."""

    sha256: str
    image: Image.Image
    depth: int


class FrameStore:
    """Stores each distinct frame once and decodes frames back to exact pixels."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._base: _Base | None = None
        self._cache: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------

    def prepare(self, conn: Connection, frame: Frame) -> EncodedFrame | None:
        """How to store ``frame``, or None when it is stored already."""
        with self._lock:
            if self._base is not None and self._base.sha256 == frame.sha256:
                return None
            depth = store.scalar(conn, "SELECT depth FROM blobs WHERE sha256 = ?", frame.sha256)
            image = open_png(frame.png)
            if depth is not None:
                self._base = _Base(frame.sha256, image, int(depth))
                return None
            base = self._base
            encoded = encode(frame.png, image, base.image if base else None,
                             base.sha256 if base else None, base.depth if base else 0)
            self._base = _Base(frame.sha256, image, encoded.depth)
            return encoded

    @staticmethod
    def insert(conn: Connection, sha256: str, encoded: EncodedFrame) -> Head | None:
        """Add the blob and its ledger record, unless another process just did."""
        if store.scalar(conn, "SELECT 1 FROM blobs WHERE sha256 = ?", sha256) is not None:
            return None
        body = {
            "width": encoded.width, "height": encoded.height, "created_at": time.time(),
            "codec": encoded.codec, "base_sha256": encoded.base_sha256, "depth": encoded.depth,
            "mode": encoded.mode, "stored_sha256": encoded.stored_sha256,
            "pixels_sha256": encoded.pixels_sha256,
        }
        _, head = store.create(conn, kind="blob.put", table="blobs", record_id=sha256,
                               body=body, unchained={"data": encoded.data})
        return head

    # -- reading ----------------------------------------------------------------

    def image(self, sha256: str) -> Image.Image:
        """The frame's pixels, exactly as the sandbox captured them."""
        with self._lock:
            cached = self._cache.get(sha256)
            if cached is not None:
                self._cache.move_to_end(sha256)
                return cached
        start, rows = self._load_chain(sha256)
        image = self._decode_chain(start, rows)
        with self._lock:
            self._cache[sha256] = image
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return image

    def png(self, sha256: str) -> bytes:
        """A PNG of the frame: the sandbox's own bytes for keyframes, re-encoded otherwise."""
        with self._engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT codec, data FROM blobs WHERE sha256 = ?",
                                       (sha256,)).first()
        if row is None:
            raise NotFound(f"no frame {sha256}")
        if row[0] == "png":
            return bytes(row[1])
        return png_bytes(self.image(sha256))

    def _load_chain(self, sha256: str) -> tuple[Image.Image | None, list[tuple[str, bytes]]]:
        """A cached starting image (or None) and the rows ``(codec, data)`` after it."""
        rows: list[tuple[str, bytes]] = []
        current: str | None = sha256
        with self._engine.connect() as conn:
            while current is not None:
                if rows:
                    with self._lock:
                        cached = self._cache.get(current)
                    if cached is not None:
                        return cached, rows
                row = conn.exec_driver_sql(
                    "SELECT codec, data, base_sha256 FROM blobs WHERE sha256 = ?", (current,),
                ).first()
                if row is None:
                    raise NotFound(f"no frame {current}")
                rows.append((row[0], bytes(row[1])))
                current = row[2] if row[0] == "tiles" else None
        return None, rows

    @staticmethod
    def _decode_chain(start: Image.Image | None, rows: list[tuple[str, bytes]]) -> Image.Image:
        image = start
        for codec, data in reversed(rows):
            if codec == "png":
                image = open_png(data)
            elif image is not None:
                image = apply_tiles(image, data)
        if image is None:
            raise NotFound("a stored frame has no keyframe to start from")
        return image
