"""Suite files are validated whole before anything runs; every mistake is located."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from agent.suites.errors import SuiteError
from agent.suites.schema import load_suite, load_suites

GOOD = """\
suite: Editor basics
defaults:
  sandbox: docker
  timeout: 60
setup:
  - exec: "mkdir -p ~/work"
  - file: {path: ~/work/b.txt, content: "x"}
  - launch: "mousepad /home/desk/work/a.txt"
  - wait_for_window: {title: "a.txt", timeout: 15}
cases:
  - id: save-edits
    name: Saving keeps the edit
    tags: [editor, smoke]
    steps:
      - click_text: alpha
      - type: "beta"
      - key: ctrl+s
      - assert_text: "beta"
      - assert_window: {title: "^a.txt"}
      - assert_file: {path: ~/work/a.txt, contains: "beta"}
      - assert_cmd: {run: "test -s ~/work/a.txt", exit: 0, stdout: ".*"}
      - type: "rm -rf ~/work\\n"
        blocked: true
    expect:
      - file: {path: ~/work/a.txt, contains: "alpha\\nbeta"}
      - any:
          - text: "beta"
          - window: {title: "a.txt"}
    precheck: must_fail
  - id: by-goal
    goal: "Rename a.txt to b.txt with the file manager"
    oracle:
      - key: ctrl+alt+t
    infeasible: false
    expect:
      - cmd: {run: "test -e ~/work/b.txt"}
"""


def write(tmp_path: Path, text: str, name: str = "s.suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problem_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, text))
    return str(caught.value)


def test_a_complete_suite_loads_with_typed_steps_and_lines(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    first, second = suite.cases
    assert [s.kind for s in suite.setup] == ["exec", "file", "launch", "wait_for_window"]
    assert first.steps[-1].blocked
    assert first.steps[-1].action is not None
    assert first.steps[0].kind == "click_text"
    assert first.steps[0].line == 15
    assert first.precheck == "must_fail"
    assert first.expect[1].kind == "any"
    assert len(first.expect[1].any_of) == 2
    assert first.timeout_s == 60
    assert second.goal is not None
    assert second.oracle[0].action is not None


@pytest.mark.parametrize(("text", "expected"), [
    ("suite: S\ncases:\n  - id: a\n    steps: [{wait: 0}]\n  - id: a\n    steps: [{wait: 0}]\n",
     ":5: id: duplicate case id 'a' (first at line 3)"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - wait: 0\n      - clik: [1, 2]\n",
     ":6: cases[0].steps[1].clik: unknown step 'clik'"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - assert_file: {path: 3, exists: maybe}\n",
     ":5: cases[0].steps[0].assert_file.exists: Input should be a valid boolean"),
    ("suite: S\ncases:\n  - id: a\n    retries: lots\n    steps: [{wait: 0}]\n",
     ":4: cases[0].retries: Input should be a valid integer"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - assert_image: {reference: nope.png}\n",
     "cases[0].steps[0].assert_image.reference: reference image"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - key: ctrl+nokey\n",
     ":5: cases[0].steps[0].key:"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - type: hi\n        blocked: yes please\n",
     ":6: cases[0].steps[0].blocked: expected true or false"),
    ("suite: S\ncases:\n  - id: a\n    steps: [{wait: 0}]\n    precheck: must_fail\n",
     ":5: cases[0].precheck: precheck: must_fail needs expect checks"),
    ("suite: S\ncases:\n  - id: a\n", ":3: cases[0]: a case needs steps or a goal"),
    ("cases:\n  - id: a\n    steps: [{wait: 0}]\n", ":1: suite: Field required"),
    ("suite: S\ncolour: red\ncases:\n  - id: a\n    steps: [{wait: 0}]\n",
     ":2: colour: Extra inputs are not permitted"),
    ("suite: S\nsetup:\n  - run: ls\ncases:\n  - id: a\n    steps: [{wait: 0}]\n",
     ":3: setup[0].run: unknown step 'run'"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - assert_window: {title: '(['}\n",
     ":5: cases[0].steps[0].assert_window: title is not a regular expression"),
    ("suite: S\ncases: [\n", "invalid YAML"),
    ("suite: S\ndefaults:\n  isolation: snapshot\ncases:\n  - id: a\n    steps: [{wait: 0}]\n",
     ":3: defaults.isolation: Input should be 'container' or 'checkpoint'"),
    ("suite: S\ncases:\n  - id: a\n    isolation: vm\n    steps: [{wait: 0}]\n",
     ":4: cases[0].isolation: Input should be 'container' or 'checkpoint'"),
    ("suite: S\ncases:\n  - id: a\n    steps:\n      - assert_text: hi\n        blocked: true\n",
     ":6: cases[0].steps[0].blocked: only actions can be blocked, not assert_text"),
])
def test_every_mistake_names_file_line_and_field(tmp_path: Path, text: str,
                                                 expected: str) -> None:
    message = problem_of(tmp_path, text)
    assert str(tmp_path / "s.suite.yaml") in message
    assert expected in message


def test_a_reference_image_is_found_beside_the_suite(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "ref.png")
    suite = load_suite(write(tmp_path, "suite: S\ncases:\n  - id: a\n    steps:\n"
                             "      - assert_image: {reference: ref.png, region: [0, 0, 4, 4]}\n"))
    spec = suite.cases[0].steps[0].spec
    assert getattr(spec, "reference", None) == tmp_path / "ref.png"


def test_problems_of_several_files_are_all_reported(tmp_path: Path) -> None:
    write(tmp_path, "suite: A\ncases:\n  - id: a\n    steps: [{clack: 1}]\n", "a.suite.yaml")
    write(tmp_path, "suite: B\ncases: []\n", "b.suite.yaml")
    with pytest.raises(SuiteError) as caught:
        load_suites([tmp_path])
    assert len(caught.value.problems) == 2
    assert {p.file for p in caught.value.problems} == {str(tmp_path / "a.suite.yaml"),
                                                       str(tmp_path / "b.suite.yaml")}


def test_a_bad_file_exits_2_with_one_located_line_and_runs_nothing(tmp_path: Path) -> None:
    suite = write(tmp_path, "suite: S\ncases:\n  - id: a\n    steps: [{wait: 0}]\n"
                  "  - id: a\n    steps: [{wait: 0}]\n")
    output = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), "--output",
                           str(output)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{suite}:5: id: duplicate case id 'a'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not output.exists()


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    suite = write(tmp_path, "suite: S\ncases:\n  - id: a\n    steps: [{wait: 0}]\n")
    for flags, words in ((["--shard", "3/2"], "--shard 3/2"), (["--reporter", "xml"],
                          "--reporter: unknown xml"), (["--grep", "(["], "--grep")):
        done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), *flags,
                               "--output", str(tmp_path / "o")], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert words in done.stderr


def test_a_policy_that_does_not_load_is_a_located_error_before_any_sandbox(
        tmp_path: Path) -> None:
    suite = write(tmp_path, "suite: S\ncases:\n  - id: a\n    policy: no-such-profile\n"
                  "    steps: [{wait: 0}]\n")
    done = subprocess.run([sys.executable, "-m", "agent", "test", str(suite), "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{suite}:3: policy: no-such-profile:" in done.stderr


def test_isolation_defaults_to_a_container_and_a_case_may_choose_its_own(tmp_path: Path) -> None:
    path = tmp_path / "iso.suite.yaml"
    path.write_text("suite: S\ndefaults: {isolation: checkpoint}\ncases:\n"
                    "  - id: reset\n    steps: [{wait: 0}]\n"
                    "  - id: fresh\n    isolation: container\n    steps: [{wait: 0}]\n",
                    encoding="utf-8")
    plain = tmp_path / "plain.suite.yaml"
    plain.write_text("suite: P\ncases:\n  - id: a\n    steps: [{wait: 0}]\n", encoding="utf-8")
    assert [c.isolation for c in load_suite(path).cases] == ["checkpoint", "container"]
    assert [c.isolation for c in load_suite(plain).cases] == ["container"]
