"""How screenshots are stored: the sandbox's PNG, or the tiles that changed.

A session's frames differ little from one step to the next, so most frames
are stored as the 32x32 tiles that differ from the previous stored frame (its
*base*), packed into one lossless WebP.  Every :data:`MAX_DEPTH` frames, when
the size or mode changes, or when most of the screen changed, the frame is
stored as the sandbox's own PNG (a *keyframe*), byte for byte.

Whatever the codec, a frame is known by the sha256 of the sandbox's PNG
(``Frame.sha256``), and decoding gives back exactly the same pixels.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageChops

TILE = 32
MAX_DEPTH = 48
# Above this share of changed tiles a keyframe is smaller and faster to decode.
MAX_CHANGED_SHARE = 0.5
STRIP_COLUMNS = 32
_MAGIC = b"DHT1"
_HEADER = struct.Struct(">4sHHI")
_TILE_INDEX = struct.Struct(">HH")
_WEBP_MODES = frozenset({"RGB", "RGBA"})


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """What goes into a ``blobs`` row."""

    codec: str
    data: bytes
    base_sha256: str | None
    depth: int
    mode: str
    width: int
    height: int
    stored_sha256: str
    pixels_sha256: str


def pixels_digest(image: Image.Image) -> str:
    """Hash of the decoded pixels, their mode and size."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def open_png(png: bytes) -> Image.Image:
    """Decode image bytes fully (not lazily)."""
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def png_bytes(image: Image.Image) -> bytes:
    """A fast lossless PNG of ``image``."""
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def keyframe(png: bytes, image: Image.Image) -> EncodedFrame:
    """Store the sandbox's PNG as it is."""
    return EncodedFrame(codec="png", data=png, base_sha256=None, depth=0, mode=image.mode,
                        width=image.width, height=image.height,
                        stored_sha256=hashlib.sha256(png).hexdigest(),
                        pixels_sha256=pixels_digest(image))


def encode(png: bytes, image: Image.Image, base: Image.Image | None, base_sha256: str | None,
           base_depth: int) -> EncodedFrame:
    """The smaller sensible encoding of ``image`` given the previous stored frame."""
    if base is None or base_sha256 is None or not _delta_possible(image, base, base_depth):
        return keyframe(png, image)
    tiles = changed_tiles(base, image)
    if len(tiles) > MAX_CHANGED_SHARE * _tile_count(image):
        return keyframe(png, image)
    data = _pack_tiles(image, tiles)
    return EncodedFrame(codec="tiles", data=data, base_sha256=base_sha256, depth=base_depth + 1,
                        mode=image.mode, width=image.width, height=image.height,
                        stored_sha256=hashlib.sha256(data).hexdigest(),
                        pixels_sha256=pixels_digest(image))


def _delta_possible(image: Image.Image, base: Image.Image, base_depth: int) -> bool:
    return (image.size == base.size and image.mode == base.mode
            and image.mode in {"RGB", "RGBA", "L"} and base_depth < MAX_DEPTH)


def _tile_count(image: Image.Image) -> int:
    return -(-image.width // TILE) * -(-image.height // TILE)


def changed_tiles(before: Image.Image, after: Image.Image) -> list[tuple[int, int]]:
    """Grid positions ``(column, row)`` of the tiles whose pixels differ."""
    difference = ImageChops.difference(before, after)
    bounds = difference.getbbox()
    if bounds is None:
        return []
    left, top, right, bottom = bounds
    found = []
    for row in range(top // TILE, -(-bottom // TILE)):
        for column in range(left // TILE, -(-right // TILE)):
            if difference.crop(tile_box(column, row, after.size)).getbbox() is not None:
                found.append((column, row))
    return found


def tile_box(column: int, row: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixel box of one tile, clipped to the image."""
    x, y = column * TILE, row * TILE
    return x, y, min(x + TILE, size[0]), min(y + TILE, size[1])


def pack_strip(image: Image.Image, tiles: list[tuple[int, int]]) -> tuple[Image.Image, int]:
    """The given tiles of ``image`` side by side, ``columns`` to a row; returns both."""
    columns = min(STRIP_COLUMNS, max(1, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    strip = Image.new(image.mode, (columns * TILE, rows * TILE))
    for slot, (column, row) in enumerate(tiles):
        tile = image.crop(tile_box(column, row, image.size))
        strip.paste(tile, ((slot % columns) * TILE, (slot // columns) * TILE))
    return strip, columns


def _pack_tiles(image: Image.Image, tiles: list[tuple[int, int]]) -> bytes:
    strip, columns = pack_strip(image, tiles)
    header = _HEADER.pack(_MAGIC, TILE, columns, len(tiles))
    index = b"".join(_TILE_INDEX.pack(column, row) for column, row in tiles)
    return header + index + webp_lossless(strip)


def webp_lossless(image: Image.Image) -> bytes:
    """Exact pixels, small and quick: lossless WebP (PNG for modes WebP lacks)."""
    out = io.BytesIO()
    if image.mode in _WEBP_MODES:
        image.save(out, "WEBP", lossless=True, quality=50, method=1, exact=True)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def apply_tiles(base: Image.Image, data: bytes) -> Image.Image:
    """Rebuild a frame from its base and its packed tiles."""
    magic, tile, columns, count = _HEADER.unpack_from(data)
    if magic != _MAGIC or tile != TILE:
        raise ValueError("not a deskhand tile delta")
    index_end = _HEADER.size + count * _TILE_INDEX.size
    strip = open_png(data[index_end:])
    if strip.mode != base.mode:
        strip = strip.convert(base.mode)
    image = base.copy()
    for slot in range(count):
        column, row = _TILE_INDEX.unpack_from(data, _HEADER.size + slot * _TILE_INDEX.size)
        box = tile_box(column, row, image.size)
        sx, sy = (slot % columns) * TILE, (slot // columns) * TILE
        image.paste(strip.crop((sx, sy, sx + box[2] - box[0], sy + box[3] - box[1])), box[:2])
    return image
