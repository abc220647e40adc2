"""Where two frames differ, as a few rectangles worth reading again.

The OCR parser re-reads only these rectangles and keeps every word that lies
outside them.  A rectangle is ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

Box = tuple[int, int, int, int]
Image = npt.NDArray[np.uint8]

# Changed rows closer than this join one band: a line of text changes in
# many rows with unchanged gaps (between glyph strokes) inside it.
_ROW_GAP = 12
# Changed columns closer than this join one rectangle: the space between
# two words of one line must not split it.
_COLUMN_GAP = 40
# Context kept around a change so the detector sees whole glyphs and the
# blank margin it expects around text.
_PADDING = 12


def changed_regions(before: Image, after: Image) -> list[Box]:
    """Rectangles (padded, merged) that cover every pixel that differs."""
    if before.shape != after.shape:
        raise ValueError(f"frames differ in size: {before.shape} vs {after.shape}")
    height, width = after.shape[:2]
    # Compare rows as flat byte runs first (fast), and look at columns only
    # inside the bands of rows that changed.
    changed = before.reshape(height, -1) != after.reshape(height, -1)
    boxes: list[Box] = []
    for top, bottom in _runs(np.flatnonzero(changed.any(axis=1)), _ROW_GAP):
        band = changed[top:bottom].reshape(bottom - top, width, -1)
        columns = np.flatnonzero(band.any(axis=(0, 2)))
        boxes.extend(_pad((left, top, right, bottom), width, height)
                     for left, right in _runs(columns, _COLUMN_GAP))
    return merge_overlapping(boxes)


def _runs(indices: npt.NDArray[np.intp], max_gap: int) -> list[tuple[int, int]]:
    """Group sorted indices into [start, end) runs, bridging gaps up to ``max_gap``."""
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > max_gap)
    starts = np.concatenate(([indices[0]], indices[breaks + 1]))
    ends = np.concatenate((indices[breaks], [indices[-1]])) + 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _pad(box: Box, width: int, height: int) -> Box:
    x0, y0, x1, y1 = box
    return (max(0, x0 - _PADDING), max(0, y0 - _PADDING),
            min(width, x1 + _PADDING), min(height, y1 + _PADDING))


def intersects(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def merge_overlapping(boxes: Iterable[Box]) -> list[Box]:
    """Merge until no two boxes overlap."""
    merged: list[Box] = []
    for box in boxes:
        merged = _absorb(merged, box)
    return merged


def _absorb(boxes: list[Box], box: Box) -> list[Box]:
    overlapping = [other for other in boxes if intersects(other, box)]
    if not overlapping:
        return [*boxes, box]
    rest = [other for other in boxes if not intersects(other, box)]
    for other in overlapping:
        box = union(box, other)
    return _absorb(rest, box)


def grow_to_cover(regions: Sequence[Box], words: Sequence[Box]) -> list[Box]:
    """Grow regions until each word box lies wholly inside one or wholly outside all.

    A word cut by a region's edge would be read as a fragment; taking the
    whole word in re-reads it intact.
    """
    grown = list(regions)
    while True:
        cut = [word for word in words
               if any(intersects(word, r) for r in grown) and not _inside_any(word, grown)]
        if not cut:
            return grown
        grown = merge_overlapping([*grown, *cut])


def _inside_any(box: Box, regions: Sequence[Box]) -> bool:
    return any(r[0] <= box[0] and r[1] <= box[1] and box[2] <= r[2] and box[3] <= r[3]
               for r in regions)


def align_to_grid(box: Box, grid: int, width: int, height: int) -> Box:
    """Grow the box outwards to multiples of ``grid`` (clipped to the frame)."""
    x0, y0, x1, y1 = box
    return (x0 - x0 % grid, y0 - y0 % grid,
            min(width, -(-x1 // grid) * grid), min(height, -(-y1 // grid) * grid))


def area_fraction(regions: Sequence[Box], width: int, height: int) -> float:
    """Share of the frame that the (non-overlapping) regions cover."""
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
    return area / float(width * height)
