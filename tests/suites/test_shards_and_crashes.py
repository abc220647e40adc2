"""Shards merge to the unsharded run; a killed runner leaves results, a valid log, no strays;
a vacuous precheck is a located error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from audit.verify import verify
from sandbox.docker import DockerSandbox, DockerSandboxConfig

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

QUICK = "".join(f"""\
  - id: quick-{i}
    steps:
      - assert_cmd: {{run: "test {i} -ge 0"}}
""" for i in range(6))
SUITE = f"suite: Quick\ndefaults: {{sandbox: docker}}\ncases:\n{QUICK}"


def case_set(output: Path) -> set[tuple[str, str]]:
    lines = (output / "results.jsonl").read_text().splitlines()
    return {(x["case"], x["status"]) for x in map(json.loads, lines)}


def test_shard_1_of_2_plus_2_of_2_merged_equals_the_unsharded_run(
        tmp_path: Path, desktop_image: str, kit: SuiteKit) -> None:
    suite = kit.write_suite(tmp_path, "quick", SUITE)
    whole = kit.deskhand("test", suite, "--output", tmp_path / "whole", "--workers", "2")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    for index in (1, 2):
        done = kit.deskhand("test", suite, "--shard", f"{index}/2",
                            "--output", tmp_path / f"shard{index}")
        assert done.returncode == 0, done.stdout + done.stderr
    shard_sets = [case_set(tmp_path / f"shard{i}") for i in (1, 2)]
    assert shard_sets[0]
    assert shard_sets[1]
    assert not shard_sets[0] & shard_sets[1]
    merged = kit.deskhand("test", "merge", tmp_path / "shard1", tmp_path / "shard2",
                          "--output", tmp_path / "merged", "--reporter", "junit,html,json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert case_set(tmp_path / "merged") == case_set(tmp_path / "whole")
    for copy in sorted((tmp_path / "merged").glob("audit-*.db")):
        assert verify(copy).ok
    assert (tmp_path / "merged" / "report.html").is_file()


def test_merge_refuses_a_tampered_chain(tmp_path: Path, desktop_image: str,
                                        kit: SuiteKit) -> None:
    suite = kit.write_suite(tmp_path, "quick", "suite: One\ndefaults: {sandbox: docker}\n"
                            "cases:\n  - id: one\n    steps: [{assert_cmd: {run: 'true'}}]\n")
    assert kit.deskhand("test", suite, "--output", tmp_path / "a").returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "a" / "audit.db") as conn:
        conn.execute("UPDATE sessions SET task = 'rewritten'")
    merged = kit.deskhand("test", "merge", tmp_path / "a", "--output", tmp_path / "m")
    assert merged.returncode == 3
    assert "audit chain:" in merged.stderr
    assert "TAMPERED" in merged.stderr


def test_kill_9_mid_suite_leaves_results_a_valid_log_and_no_container(
        tmp_path: Path, desktop_image: str, docker_client: docker.DockerClient,
        kit: SuiteKit) -> None:
    slow = "".join(f"  - id: slow-{i}\n    steps:\n      - wait: 1\n"
                   f"      - assert_cmd: {{run: 'true'}}\n" for i in range(8))
    suite = kit.write_suite(tmp_path, "slow", f"suite: Slow\ndefaults: {{sandbox: docker}}\n"
                            f"cases:\n{slow}")
    output = tmp_path / "out"
    runner = subprocess.Popen([sys.executable, "-m", "agent", "test", str(suite), "--output",
                               str(output)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    results = output / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists()
                                           or len(results.read_text().splitlines()) < 2):
        assert runner.poll() is None, "the runner ended before it could be killed"
        time.sleep(0.1)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=30)
    finished = [json.loads(x) for x in results.read_text().splitlines()]
    assert len(finished) >= 2
    assert all(x["status"] == "passed" for x in finished)
    assert len(finished) < 8
    report = verify(output / "audit.db")
    assert report.ok, report.summary()
    with DockerSandbox(docker_client, DockerSandboxConfig(image=desktop_image)):
        assert kit.containers_of(docker_client, [runner.pid]) == []


def test_a_precheck_whose_checks_already_hold_is_a_located_error(
        tmp_path: Path, desktop_image: str, kit: SuiteKit) -> None:
    suite = kit.write_suite(tmp_path, "vacuous", """\
suite: Vacuous
defaults: {sandbox: docker}
setup:
  - file: {path: ~/work/a.txt, content: "alpha"}
cases:
  - id: already-done
    steps: [{wait: 0}]
    expect:
      - file: {path: ~/work/a.txt, contains: alpha}
    precheck: must_fail
""")
    done = kit.deskhand("test", suite, "--output", tmp_path / "out")
    assert done.returncode == 3, done.stdout
    [line] = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text()
              .splitlines()]
    assert line["status"] == "error"
    assert line["line"] == 9
    assert "precheck: must_fail" in line["message"]
    assert f"{suite}:9: " in done.stdout


def test_ctrl_c_stops_attempts_removes_their_sandboxes_and_reports(
        tmp_path: Path, desktop_image: str, docker_client: docker.DockerClient,
        kit: SuiteKit) -> None:
    slow = "".join(f"  - id: slow-{i}\n    steps:\n" + "      - wait: 1\n" * 4
                   for i in range(6))
    suite = kit.write_suite(tmp_path, "slow", f"suite: Slow\ndefaults: {{sandbox: docker}}\n"
                            f"cases:\n{slow}")
    output = tmp_path / "out"
    runner = subprocess.Popen([sys.executable, "-m", "agent", "test", str(suite), "--output",
                               str(output), "--workers", "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    results = output / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results.exists() and results.read_text()):
        assert runner.poll() is None
        time.sleep(0.1)
    runner.send_signal(signal.SIGINT)
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 130, out
    assert "interrupted" in out
    assert kit.containers_of(docker_client, [runner.pid]) == []
    statuses = [json.loads(x)["status"] for x in results.read_text().splitlines()]
    assert len(statuses) == 6, out
    assert "passed" in statuses
    assert (output / "junit.xml").is_file()
    assert verify(output / "audit.db").ok
