"""Docker backend figures, with the per-action ``docker exec`` approach measured in the same run.

- ``docker.cold_start``: ``DockerSandbox.start()`` (stray check, ``docker run``,
  hardening self-check, executor attach, hello) through the first screenshot;
  target p50 <= 1500 ms.
- ``docker.step_overhead``: one action (a letter typed into xterm, no settle)
  plus the fresh screenshot that comes back with it, through the long-lived
  executor; the screen changes every step, so every PNG is really encoded;
  target p50 <= 50 ms.
- ``docker.step_settled``: the same with adaptive settling, as the agent loop
  runs it for scripts (``fast`` profile); ``.._model_profile``: as it runs for
  model planners (waits for late drawing);
- ``docker.click_nothing_fast_profile``: a click that changes nothing (target
  <= 300 ms: the fast profile's click change timeout is 250 ms).
- ``docker.exec_per_action``: what other harnesses do per action - a fresh
  ``docker exec ... xdotool type`` and a fresh ``docker exec`` that grabs and
  encodes a PNG - on the same container and terminal (``.xdotool_only``: the
  action's ``docker exec`` alone).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import docker

from sandbox.actions import Click, Key, TypeText
from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir
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
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def run_benchmarks(client: docker.DockerClient | None = None, *, starts: int = 5,
                   steps: int = 40, exec_steps: int = 15) -> list[dict[str, Any]]:
    """Build the image if the sources changed, then measure; one row per figure."""
    client = client or docker.from_env()
    built = build_image(client, BuildOptions(cache_dir=default_cache_dir()), SilentProgress())
    config = DockerSandboxConfig(image=built.image)
    rows = figures("docker.cold_start", cold_starts_ms(client, config, starts), target_p50=1500)
    with DockerSandbox(client, config) as sandbox:
        open_terminal(sandbox)
        ours = step_ms(sandbox, steps, settle=False)
        settled = step_ms(sandbox, steps, settle=True)
        settled_model = step_ms(sandbox, steps // 4, settle=True, profile="model")
        click_nothing = [timed(lambda index: sandbox.execute(Click(x=2 + index % 2, y=2)), n)
                         for n in range(steps // 4)]
        theirs, exec_alone = exec_per_action_ms(client, sandbox.container_id, exec_steps)
    rows += figures("docker.step_overhead", ours, target_p50=50)
    rows += figures("docker.step_settled", settled)
    rows += figures("docker.step_settled_model_profile", settled_model)
    rows += figures("docker.click_nothing_fast_profile", click_nothing, target_p50=300)
    rows += figures("docker.exec_per_action", theirs)
    rows += figures("docker.exec_per_action.xdotool_only", exec_alone)
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


def open_terminal(sandbox: DockerSandbox) -> None:
    sandbox.execute(Key(keys=["ctrl", "alt", "t"]))
    deadline = time.monotonic() + 15
    while "xterm" not in sandbox.screenshot().window_title.lower():
        if time.monotonic() > deadline:
            raise RuntimeError("no terminal opened for the step benchmark")
        time.sleep(0.1)


def step_ms(sandbox: DockerSandbox, count: int, *, settle: bool,
            profile: str | None = None) -> list[float]:
    def type_letter(index: int) -> None:
        sandbox.execute(TypeText(text=LETTERS[index % len(LETTERS)]), settle=settle,
                        settle_profile=profile)

    type_letter(0)  # warm the executor's first-use paths
    return [timed(type_letter, index) for index in range(1, count + 1)]


def exec_per_action_ms(client: docker.DockerClient, container_id: str,
                       count: int) -> tuple[list[float], list[float]]:
    """Per-action ``docker exec``: (action + screenshot, the action's exec alone)."""
    run = _cli_exec if shutil.which("docker") else _sdk_exec(client)
    action_only: list[float] = []

    def act(index: int) -> None:
        started = time.perf_counter()
        run(container_id, ["xdotool", "type", "--", LETTERS[index % len(LETTERS)]])
        action_only.append(elapsed_ms(started))
        png = run(container_id, [EXECUTOR_PYTHON, "-c", ONE_SHOT_SCREENSHOT])
        if not png.startswith(b"\x89PNG"):
            raise RuntimeError("the one-shot screenshot did not return a PNG")

    return [timed(act, index) for index in range(count)], action_only


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
