"""Element steps in suites: ``click: {role, name}``, ``assert_element``, ``wait_for_element``
and the ``element`` check, parsed with located errors, and run end to end by
``deskhand test`` on real Docker desktops against the apps' accessibility trees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agent.suites import specs
from agent.suites.errors import SuiteError
from agent.suites.schema import load_suite
from audit.log import AuditLog

if TYPE_CHECKING:
    from tests.suites.conftest import SuiteKit

CHECK_BOX = "{role: check box, name: Wrap long lines"
SUITE = f"""\
suite: Elements
defaults:
  sandbox: docker
  timeout: 120
cases:
  - id: sums-by-buttons
    setup:
      - launch: galculator
      - wait_for_window: {{title: galculator, timeout: 30}}
    steps:
      - wait_for_element: {{role: toggle button, name: "7", timeout: 30}}
      - click: {{role: toggle button, name: "7"}}
      - click: {{role: toggle button, name: "*"}}
      - click: {{role: toggle button, name: "6"}}
      - click: {{role: toggle button, name: "="}}
      - assert_text: {{text: "42", exact: true}}
    expect:
      - element: {{role: toggle button, name: MS, state: enabled}}
  - id: wraps-lines
    setup:
      - launch: mousepad
      - wait_for_window: {{title: Mousepad, timeout: 30}}
    steps:
      - click: {{role: menu, name: Edit, timeout: 30}}
      - click: {{role: menu item, name: Preferences...}}
      - assert_element: {CHECK_BOX}, state: not checked}}
      - click: {CHECK_BOX}}}
      - assert_element: {CHECK_BOX}, state: checked}}
  - id: no-such-button
    setup:
      - launch: galculator
      - wait_for_window: {{title: galculator, timeout: 30}}
    steps:
      - wait_for_element: {{role: toggle button, name: "7", timeout: 30}}
      - click: {{role: toggle button, name_re: "^Sav", timeout: 2}}
"""


# --- parsing ---------------------------------------------------------------------------------


def test_element_steps_load_as_typed_specs_with_their_lines(tmp_path: Path,
                                                            kit: SuiteKit) -> None:
    path = kit.write_suite(tmp_path, "elements", SUITE)
    cases = {c.id: c for c in load_suite(path).cases}
    sums = cases["sums-by-buttons"].steps
    assert [s.kind for s in sums[:3]] == ["wait_for_element", "click_element", "click_element"]
    click = sums[1]
    assert isinstance(click.spec, specs.ElementSpec)
    assert click.action is None
    assert (click.spec.role, click.spec.name) == ("toggle button", "7")
    assert click.line == kit.line_of(path, 'click: {role: toggle button, name: "7"}')
    checked = cases["wraps-lines"].steps[4].spec
    assert isinstance(checked, specs.ElementSpec)
    assert checked.query().state == "checked"
    [expect] = cases["sums-by-buttons"].expect
    assert expect.kind == "element"


def test_a_click_with_coordinates_stays_an_action(tmp_path: Path, kit: SuiteKit) -> None:
    path = kit.write_suite(tmp_path, "clicks", "suite: C\ncases:\n  - id: a\n    steps:\n"
                           "      - click: [10, 20]\n      - assert_element: Save\n")
    click, named = load_suite(path).cases[0].steps
    assert click.action is not None
    assert click.kind == "click"
    assert isinstance(named.spec, specs.ElementSpec)
    assert named.spec.name == "Save"


@pytest.mark.parametrize(("step", "problem"), [
    ("click: {role: push button, colour: red}", "colour"),
    ("click: {role: push button, name: Save, name_re: Sa}", "give name or name_re, not both"),
    ("assert_element: {name_re: '('}", "not a regular expression"),
    ("wait_for_element: {state: checked}", "needs a role, a name or a name_re"),
    ("click: {role: push button, count: 4}", "count"),
])
def test_a_bad_element_step_names_its_line_and_field(tmp_path: Path, kit: SuiteKit, step: str,
                                                      problem: str) -> None:
    path = kit.write_suite(tmp_path, "bad", f"suite: B\ncases:\n  - id: a\n    steps:\n"
                           f"      - {step}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert f"{path}:5" in message
    assert problem in message


# --- on real desktops ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def element_run(tmp_path_factory: pytest.TempPathFactory, desktop_image: str,
                kit: SuiteKit) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("elements")
    suite = kit.write_suite(folder, "elements", SUITE)
    output = folder / "out"
    done = kit.deskhand("test", suite, "--workers", "2", "--output", output,
                        "--reporter", "list,json")
    return output, done


@pytest.mark.docker
@pytest.mark.slow
def test_element_steps_click_and_assert_on_real_apps(
        element_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output, done = element_run
    report = json.loads((output / "report.json").read_text())
    statuses = {c["case"]: c["status"] for c in report["cases"]}
    assert statuses == {"sums-by-buttons": "passed", "wraps-lines": "passed",
                        "no-such-button": "failed"}, done.stdout + done.stderr
    assert done.returncode == 1


@pytest.mark.docker
@pytest.mark.slow
def test_a_missing_element_fails_naming_the_nearest_ones(
        element_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output, _ = element_run
    report = json.loads((output / "report.json").read_text())
    [failed] = [c for c in report["cases"] if c["case"] == "no-such-button"]
    message = failed["message"]
    assert "no element matches role 'toggle button', name_re '^Sav'" in message
    assert "nearest: toggle button" in message


@pytest.mark.docker
@pytest.mark.slow
def test_each_element_click_records_its_target_in_the_audit_log(
        element_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    output, _ = element_run
    lines = [json.loads(x) for x in (output / "results.jsonl").read_text().splitlines()]
    [sums] = [x for x in lines if x["case"] == "sums-by-buttons"]
    with AuditLog.open(output / "audit.db") as log:
        targets = [s.proposed_raw["click_element"] for s in log.steps(sums["session_id"])
                   if isinstance(s.proposed_raw, dict) and "click_element" in s.proposed_raw]
    assert [(t["role"], t["name"], t["source"]) for t in targets] == [
        ("toggle button", name, "a11y") for name in ("7", "*", "6", "=")]
    assert all(len(t["box"]) == 4 for t in targets)
