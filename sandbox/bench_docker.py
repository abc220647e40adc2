"""Docker backend figures, with the per-action ``docker exec`` approach measured in the same run.

- ``docker.cold_start``: ``DockerSandbox.start()`` (stray check, ``docker run``,
  hardening self-check, executor attach, hello) through the first screenshot;
  target p50 <= 1500 ms.
- ``docker.step_overhead``: one action (a pointer move, no settle) plus the
  screenshot that comes back with it, through the long-lived executor; target
  p50 <= 50 ms.
- ``docker.exec_per_action``: what other harnesses do per action - a fresh
  ``docker exec ... xdotool`` and a fresh ``docker exec`` that grabs and
  encodes a PNG - on the same container.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import docker

from agent.actions import MouseMove
from sandbox.build import DEFAULT_IMAGE
from sandbox.docker import DockerSandbox, DockerSandboxConfig

ONE_SHOT_SCREENSHOT = (
    "import io, sys, mss; from PIL import Image\n"
    "with mss.mss() as grab:\n"
    "    shot = grab.grab(grab.monitors[0])\n"
    "image = Image.frombytes('RGB', shot.size, shot.bgra, 'raw', 'BGRX')\n"
    "buffer = io.BytesIO(); image.save(buffer, 'PNG', compress_level=1)\n"
    "sys.stdout.buffer.write(buffer.getvalue())\n"
)
EXECUTOR_PYTHON = "/opt/deskhand/venv/bin/python"


def run_benchmarks(client: docker.DockerClient | None = None, *, image: str = DEFAULT_IMAGE,
                   starts: int = 5, steps: int = 40, exec_steps: int = 15) -> list[dict[str, Any]]:
    """Measure and return one row per figure (name, value, unit, n, target)."""
    client = client or docker.from_env()
    config = DockerSandboxConfig(image=image)
    rows = figures("docker.cold_start", cold_starts_ms(client, config, starts), target_p50=1500)
    with DockerSandbox(client, config) as sandbox:
        ours = step_ms(sandbox, steps)
        theirs = exec_per_action_ms(client, sandbox.container_id, exec_steps)
    rows += figures("docker.step_overhead", ours, target_p50=50)
    rows += figures("docker.exec_per_action", theirs)
    rows.append({"name": "docker.speedup_vs_exec_per_action.p50", "unit": "x",
                 "value": round(statistics.median(theirs) / statistics.median(ours), 1),
                 "n": len(ours), "target": None})
    return rows


def cold_starts_ms(client: docker.DockerClient, config: DockerSandboxConfig,
                   count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        with DockerSandbox(client, config) as sandbox:
            sandbox.screenshot()
            timings.append(elapsed_ms(started))
    return timings


def step_ms(sandbox: DockerSandbox, count: int) -> list[float]:
    def move(index: int) -> None:
        sandbox.execute(MouseMove(x=100 + index % 200, y=100), settle=False)

    move(0)  # warm the executor's first-use paths
    return [timed(move, index) for index in range(1, count + 1)]


def exec_per_action_ms(client: docker.DockerClient, container_id: str,
                       count: int) -> list[float]:
    run = _cli_exec if shutil.which("docker") else _sdk_exec(client)

    def act(index: int) -> None:
        run(container_id, ["xdotool", "mousemove", str(100 + index), "100"])
        png = run(container_id, [EXECUTOR_PYTHON, "-c", ONE_SHOT_SCREENSHOT])
        if not png.startswith(b"\x89PNG"):
            raise RuntimeError("the one-shot screenshot did not return a PNG")

    return [timed(act, index) for index in range(count)]


def _cli_exec(container_id: str, argv: list[str]) -> bytes:
    return subprocess.run(["docker", "exec", container_id, *argv], check=True,
                          capture_output=True).stdout


def _sdk_exec(client: docker.DockerClient) -> Callable[[str, list[str]], bytes]:
    def run(container_id: str, argv: list[str]) -> bytes:
        exec_id = client.api.exec_create(container_id, argv)["Id"]
        return bytes(client.api.exec_start(exec_id))
    return run


def timed(work: Callable[[int], object], index: int) -> float:
    started = time.perf_counter()
    work(index)
    return elapsed_ms(started)


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def figures(name: str, values: list[float], *,
            target_p50: float | None = None) -> list[dict[str, Any]]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return [{"name": f"{name}.p50", "value": round(statistics.median(values), 1), "unit": "ms",
             "n": len(values), "target": target_p50},
            {"name": f"{name}.p95", "value": round(p95, 1), "unit": "ms", "n": len(values),
             "target": None}]


if __name__ == "__main__":
    import json

    for row in run_benchmarks():
        print(json.dumps(row))
