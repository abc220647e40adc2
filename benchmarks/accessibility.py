"""The accessibility tree's cost beside OCR's, on the same frames of real apps, in one run.

For each GTK app of the desktop image (galculator, mousepad, pcmanfm), in a
fresh Docker desktop with the app open and its tree up:

- ``a11y.<app>.tree_fetch``: ``Sandbox.elements()`` from the host, uncached: the
  request over the executor's channel, the AT-SPI walk of the active window, the
  reply (``elements``: how many it listed);
- baseline ``a11y.<app>.ocr_same_frame``: the offline OCR reading the whole of a
  frame taken at the same moment (no cache, no diff: what an app without a tree costs);
- ``a11y.<app>.speedup_vs_ocr.p50``: the ratio of the two medians.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker

from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from benchmarks.steps import figures
from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir
from sandbox.docker import DockerSandbox, DockerSandboxConfig

FETCHES = 20
OCR_READS = 5
READY_TIMEOUT_S = 60.0
TREE_FETCH_TARGET_P50_MS = 150.0


@dataclass(frozen=True, slots=True)
class App:
    name: str
    prepare: str  # shell, as the desktop user, before the app starts
    argv: tuple[str, ...]
    ready: Callable[[list[dict[str, Any]]], bool]  # the tree shows what the app is open with


def _has(role: str, name: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda elements: any(e["role"] == role and e["name"] == name for e in elements)


APPS = (
    App("galculator", "true", ("galculator",), _has("toggle button", "7")),
    App("mousepad", "mkdir -p ~/work && seq -f 'line %g of a plain text file' 40 > ~/work/a.txt",
        ("mousepad", "/home/desk/work/a.txt"), _has("menu", "Document")),
    App("pcmanfm", "mkdir -p ~/work && for i in $(seq 12); do echo $i > ~/work/file-$i.txt; done",
        ("pcmanfm", "/home/desk/work"), _has("icon", "file-12.txt")),
)


def run_benchmarks(client: docker.DockerClient | None = None) -> list[dict[str, Any]]:
    """Build the image if its sources changed, then measure each app; one row per figure."""
    client = client or docker.from_env()
    image = build_image(client, BuildOptions(cache_dir=default_cache_dir()),
                        SilentProgress()).image
    ocr = OcrScreenParser(RapidOcrReader.load())
    rows: list[dict[str, Any]] = []
    for app in APPS:
        with DockerSandbox(client, DockerSandboxConfig(image=image)) as box:
            rows += _measure(box, app, ocr)
    return rows


def _measure(box: DockerSandbox, app: App, ocr: OcrScreenParser) -> list[dict[str, Any]]:
    count = _open(box, app)
    frame = box.screenshot()
    fetch = [_timed(box.elements) for _ in range(FETCHES)]
    read = [_timed(lambda: ocr.parse_full(frame)) for _ in range(OCR_READS)]
    baseline = round(statistics.median(read), 2)
    prefix = f"a11y.{app.name}"
    rows = [{**row, "baseline": baseline, "elements": count}
            for row in figures(f"{prefix}.tree_fetch", fetch,
                               target_p50=TREE_FETCH_TARGET_P50_MS)]
    rows += figures(f"{prefix}.ocr_same_frame", read)
    rows.append({"name": f"{prefix}.speedup_vs_ocr.p50", "unit": "x", "target": None,
                 "value": round(statistics.median(read) / statistics.median(fetch), 1)})
    return rows


def _open(box: DockerSandbox, app: App) -> int:
    """Start the app and wait until its tree is up; how many elements it lists."""
    box.check(["sh", "-c", app.prepare])
    box.check(["setsid", "-f", "sh", "-c", 'exec "$0" "$@" >/dev/null 2>&1', *app.argv])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        tree = box.elements()
        if tree["available"] and app.ready(tree["elements"]):
            return len(tree["elements"])
        time.sleep(0.2)
    raise RuntimeError(f"{app.name}'s accessibility tree did not come up in "
                       f"{READY_TIMEOUT_S:g} s")


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    import json

    for row in run_benchmarks():
        print(json.dumps(row))
