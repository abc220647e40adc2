"""JUnit XML as CI systems read it, written with ``junitparser``.

One ``testsuite`` per suite file; one ``testcase`` per case (and repeat) with
``classname`` = the suite file, ``name`` = the case id, ``file``, ``line`` (of
the failing step, else of the case) and ``time``.  Failures carry the step
and the assertion; ``properties`` name the session, image digest and policy
hash; ``system-out`` links the failing frame as ``[[ATTACHMENT|path]]``.
A flaky case is a passing testcase with ``status=flaky`` and its failed
attempts in ``system-out``, as Playwright reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from junitparser import (
    Attr,
    Error,
    Failure,
    IntAttr,
    JUnitXml,
    Properties,
    Property,
    Skipped,
    TestCase,
    TestSuite,
)

from agent.suites.reports.evidence import Evidence
from agent.suites.results import FAILING, CaseResult


class DeskhandTestCase(TestCase):
    """A testcase with the ``file`` and ``line`` attributes CI systems link to."""

    file = Attr()
    line = IntAttr()


def write_junit(cases: Sequence[CaseResult], path: Path, evidence: Evidence) -> None:
    xml = JUnitXml(name="deskhand test")
    suites: dict[str, TestSuite] = {}
    for case in cases:
        last = case.last
        suite = suites.get(last.file)
        if suite is None:
            suite = suites[last.file] = TestSuite(last.suite)
            suite.add_property("file", last.file)
            xml.add_testsuite(suite)
        suite.add_testcase(_testcase(case, evidence))
    for suite in suites.values():
        suite.update_statistics()  # type: ignore[no-untyped-call]
    xml.update_statistics()  # type: ignore[no-untyped-call]
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)


def _testcase(case: CaseResult, evidence: Evidence) -> DeskhandTestCase:
    last = case.last
    name = last.case if last.repeat == 1 else f"{last.case} [repeat {last.repeat}]"
    testcase = DeskhandTestCase(name=name, classname=last.file,
                                time=round(sum(a.duration_s for a in case.attempts), 3))
    failure = case.first_failure if case.status != "passed" else None
    testcase.file = last.file
    testcase.line = (failure.line if failure and failure.line else None) or last.case_line
    testcase.append(_properties(case))  # type: ignore[no-untyped-call]
    result = _result(case)
    if result is not None:
        testcase.result = [result]
    out = _system_out(case, evidence)
    if out:
        testcase.system_out = out
    return testcase


def _properties(case: CaseResult) -> Properties:
    props = Properties()  # type: ignore[no-untyped-call]
    last = case.last
    for key, value in (("status", case.status), ("session_id", last.session_id),
                       ("image_digest", last.image), ("policy_sha256", last.policy_sha256),
                       ("policy", last.policy), ("attempts", str(len(case.attempts))),
                       ("engine", last.engine), ("isolation", last.isolation)):
        props.add_property(Property(key, value))
    for attempt in case.attempts[:-1]:
        props.add_property(Property(f"attempt_{attempt.attempt}_session_id",
                                    attempt.session_id))
    return props


def _result(case: CaseResult) -> Failure | Error | Skipped | None:
    last = case.last
    step = f"{last.step}: " if last.step else ""
    where = f"{last.file}:{last.line}: " if last.line else ""
    message = f"{where}{step}{last.message}"
    if case.status in FAILING:
        failure = Failure(message, type_=case.status)
        failure.text = _attempt_lines(case)
        return failure
    if case.status == "error":
        error = Error(message, type_="error")
        error.text = _attempt_lines(case)
        return error
    if case.status == "skipped":
        return Skipped(last.message)
    return None


def _attempt_lines(case: CaseResult) -> str:
    return "\n".join(f"attempt {a.attempt}: {a.status}: {a.message} (session {a.session_id})"
                     for a in case.attempts)


def _system_out(case: CaseResult, evidence: Evidence) -> str:
    failure = case.first_failure
    if failure is None:
        return ""
    lines = [_attempt_lines(case)]
    frame = evidence.save_failing_frame(failure)
    if frame is not None:
        lines.append(f"[[ATTACHMENT|{frame.resolve()}]]")
    return "\n".join(lines)
