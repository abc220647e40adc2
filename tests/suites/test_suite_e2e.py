"""End to end on real Docker desktops, two workers: every status, every report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from junitparser import Failure, JUnitXml, Properties, Skipped
from PIL import Image

from agent.suites.reports.junit import DeskhandTestCase
from audit.log import AuditLog
from audit.verify import verify

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TERMINAL_SETUP = """\
setup:
  - exec: "mkdir -p ~/work && printf 'alpha\\\\n' > ~/work/a.txt"
  - launch: "xterm -title work-terminal"
  - wait_for_window: {title: work-terminal, timeout: 20}
"""
MIXED = f"""\
suite: Mixed statuses
defaults:
  sandbox: docker
  timeout: 60
{TERMINAL_SETUP}cases:
  - id: passes
    tags: [smoke]
    steps:
      - click: [640, 400]
      - type: "echo KEEP-OK-42\\n"
      - assert_text: KEEP-OK-42
  - id: fails
    steps:
      - click: [640, 400]
      - type: "echo SHOWN-OK-41\\n"
      - assert_text: {{text: SHOWN-OK-42, timeout: 2}}
  - id: flaky
    retries: 1
    steps:
      - assert_cmd: {{run: 'test "$DESKHAND_ATTEMPT" -ge 2', timeout: 1}}
  - id: refuses-rm
    steps:
      - click: [640, 400]
      - type: "rm -rf ~/work\\n"
        blocked: true
      - assert_file: {{path: ~/work/a.txt, contains: alpha}}
  - id: policy-blocks
    steps:
      - click: [640, 400]
      - type: "rm -rf ~/work\\n"
  - id: not-today
    skip: "not today"
    steps: [{{wait: 0}}]
"""

EXPECTED = {"passes": "passed", "fails": "failed", "flaky": "flaky", "refuses-rm": "passed",
            "policy-blocks": "blocked_by_policy", "not-today": "skipped"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory, desktop_image: str,
              kit: SuiteKit) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("mixed")
    suite = kit.write_suite(folder, "mixed", MIXED)
    output = folder / "out"
    done = kit.deskhand("test", suite, "--workers", "2", "--output", output,
                    "--reporter", "list,junit,html,json")
    return suite, output, done


def test_statuses_and_exit_code(mixed_run: tuple[Path, Path, subprocess.CompletedProcess[str]]
                                ) -> None:
    _, output, done = mixed_run
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((output / "report.json").read_text())
    assert {c["case"]: c["status"] for c in report["cases"]} == EXPECTED
    assert report["counts"]["flaky"] == 1
    assert "6 cases: 2 passed, 1 failed, 1 flaky, 1 skipped, 1 blocked_by_policy" in done.stdout


def test_results_jsonl_has_one_line_per_attempt_with_tagged_sessions(
        mixed_run: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    suite, output, _ = mixed_run
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()]
    assert sorted((x["case"], x["attempt"]) for x in lines) == sorted(
        [(c, 1) for c in EXPECTED] + [("flaky", 2)])
    assert {x["worker"] for x in lines if x["status"] != "skipped"} == {1, 2}
    assert verify(output / "audit.db").ok
    with AuditLog.open(output / "audit.db") as log:
        sessions = {s.id: s for s in log.list_sessions()}
        for line in lines:
            if line["status"] == "skipped":
                continue
            extra = sessions[line["session_id"]].extra
            assert (extra["suite"], extra["case"], extra["attempt"]) == \
                ("Mixed statuses", line["case"], line["attempt"])
            assert extra["suite_file"] == str(suite)


def test_junit_reads_back_field_by_field(
        mixed_run: tuple[Path, Path, subprocess.CompletedProcess[str]], kit: SuiteKit) -> None:
    suite, output, _ = mixed_run
    lines = {(x["case"], x["attempt"]): x for x in
             map(json.loads, (output / "results.jsonl").read_text().splitlines())}
    xml = JUnitXml.fromfile(str(output / "junit.xml"))
    [testsuite] = list(xml)
    assert testsuite.name == "Mixed statuses"
    assert testsuite.tests == 6
    assert testsuite.failures == 2
    assert testsuite.skipped == 1
    cases = {c.name: DeskhandTestCase.fromelem(c)  # type: ignore[no-untyped-call]
             for c in testsuite}
    assert set(cases) == set(EXPECTED)
    for name, case in cases.items():
        assert case.classname == str(suite)
        assert case.file == str(suite)
        assert case.time is not None
        assert (case.time > 0) == (name != "not-today")
    failing = cases["fails"]
    [failure] = failing.result
    assert isinstance(failure, Failure)
    assert failing.line == kit.line_of(suite, "assert_text: {text: SHOWN-OK-42")
    assert "assert_text" in (failure.message or "")
    assert "SHOWN-OK-42" in (failure.message or "")
    assert "closest:" in (failure.message or "")
    properties = {p.name: p.value for p in failing.child(Properties)}
    attempt = lines[("fails", 1)]
    assert properties["session_id"] == attempt["session_id"]
    assert properties["image_digest"].startswith("sha256:")
    assert properties["policy_sha256"] == attempt["policy_sha256"]
    assert len(properties["policy_sha256"]) == 64
    out = failing.system_out or ""
    assert "[[ATTACHMENT|" in out
    frame = Path(out.split("[[ATTACHMENT|")[1].split("]]")[0])
    with Image.open(frame) as picture:
        assert picture.size == (1280, 800)
    blocked = cases["policy-blocks"]
    [result] = blocked.result
    assert isinstance(result, Failure)
    assert result.type == "blocked_by_policy"
    assert blocked.line == kit.line_of(suite, 'type: "rm -rf', after="id: policy-blocks")
    assert isinstance(cases["not-today"].result[0], Skipped)
    assert {p.name: p.value for p in cases["flaky"].child(Properties)}["status"] == "flaky"
    assert cases["flaky"].is_passed


def test_html_report_opens_in_headless_chromium(
        mixed_run: tuple[Path, Path, subprocess.CompletedProcess[str]]) -> None:
    _, output, _ = mixed_run
    page = output / "report.html"
    text = page.read_text()
    assert "data:image/jpeg;base64," in text
    assert "blocked_by_policy" in text
    for session in json.loads((output / "report.json").read_text())["cases"][0]["sessions"]:
        assert (output / "sessions" / f"{session}.html").is_file()
    steps = sum(json.loads(x)["steps"] for x in (output / "results.jsonl").read_text()
                .splitlines())
    assert page.stat().st_size <= 5_000_000 * max(1, steps) / 100
    shot = output / "report.png"
    subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as picture:
        assert picture.size == (1200, 900)
        colours = picture.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None
        assert len(colours) > 20  # text and a table drawn, not a blank page
