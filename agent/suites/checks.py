"""Evaluate suite checks against a running sandbox, polling until they hold.

Like Playwright's ``expect``, a check is retried until it holds or its
timeout passes; the last failure explains itself (what the screen read,
the file's start, the command's exit and output).  Files and commands are
read with ``sandbox.check`` (as the desktop user, from its home); text with
the screen reader (offline OCR); windows by title (regular expression);
elements by role, name and state from the accessibility tree (OCR's phrases
for apps without one).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.perception import textmatch
from agent.perception.elements import AccessibilityTree, Element, TextAsElements, TreeThenText
from agent.perception.errors import PerceptionError
from agent.perception.screen import TextElement
from agent.suites import specs
from agent.suites.schema import Check
from sandbox.base import CheckResult, Frame, Sandbox

POLL_INTERVAL_S = 0.25
SHOWN_CONTENT_CHARS = 120
# Resolves ``~/`` against the desktop user's home before using a path.
HOME_PATH_SH = 'p=$1; case $p in "~/"*) p="$HOME/${p#??}";; "~") p="$HOME";; esac; '
_LIST_WINDOWS = ('for w in $(xdotool search --onlyvisible --name . 2>/dev/null); do '
                 'xdotool getwindowname "$w"; done')


class ScreenReader(Protocol):
    """Reads the words on a frame (the OCR screen parser)."""

    def parse(self, frame: Frame) -> list[TextElement]: ...


class LockedReader:
    """One reader shared by worker threads: the OCR models run one frame at a time."""

    def __init__(self, reader: ScreenReader) -> None:
        self._reader = reader
        self._lock = threading.Lock()

    def parse(self, frame: Frame) -> list[TextElement]:
        with self._lock:
            return self._reader.parse(frame)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation: whether it held, why not, where (for text and elements), the element
    found, and the frame looked at."""

    ok: bool
    message: str = ""
    point: tuple[int, int] | None = None
    frame: Frame | None = None
    element: Element | None = None


class Checker:
    """Evaluates checks in one sandbox (see the module docstring)."""

    def __init__(self, sandbox: Sandbox, reader: ScreenReader | None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 deadline: float | None = None,
                 environment: dict[str, str] | None = None) -> None:
        self.sandbox = sandbox
        self.environment = dict(environment or {})
        self.reader = reader
        self._clock = clock
        self._sleep = sleep
        self.deadline = deadline
        self._elements: TreeThenText | None = None

    def shell(self, script: str, *args: str, timeout_s: float = 30.0) -> CheckResult:
        """Run ``sh -c script`` in the sandbox with the attempt's variables set."""
        assignments = [f"{k}={v}" for k, v in sorted(self.environment.items())]
        argv = ["env", *assignments, "sh", "-c", script, "sh", *args]
        return self.sandbox.check(argv, timeout_s=timeout_s)

    # -- polling -----------------------------------------------------------------------

    def poll(self, kind: str, spec: specs.Spec, timeout_s: float | None = None) -> Verdict:
        """Probe until the check holds or ``timeout_s`` (default: the spec's) has passed."""
        wait = getattr(spec, "timeout", specs.DEFAULT_WAIT_S) if timeout_s is None else timeout_s
        end = self._clock() + wait
        if self.deadline is not None:
            end = min(end, self.deadline)
        while True:
            verdict = self.probe(kind, spec)
            if verdict.ok or self._clock() >= end:
                return verdict
            self._sleep(max(0.0, min(POLL_INTERVAL_S, end - self._clock())))

    def holds(self, check: Check, *, timeout_s: float | None = None) -> Verdict:
        """An ``expect`` entry: its own check, or any of its alternatives (polled together)."""
        if check.kind != "any":
            assert check.spec is not None
            return self.poll(check.kind, check.spec, timeout_s)
        wait = max((getattr(c.spec, "timeout", 0.0) for c in check.any_of), default=0.0)
        end = self._clock() + (wait if timeout_s is None else timeout_s)
        while True:
            verdicts = [self.holds(c, timeout_s=0) for c in check.any_of]
            if any(v.ok for v in verdicts) or self._clock() >= end:
                ok = next((v for v in verdicts if v.ok), None)
                return ok or Verdict(False, "none held: " + "; ".join(v.message for v in verdicts))
            self._sleep(POLL_INTERVAL_S)

    # -- one look ---------------------------------------------------------------------

    def probe(self, kind: str, spec: specs.Spec) -> Verdict:
        if isinstance(spec, specs.TextSpec):
            return self.text(spec)
        if isinstance(spec, specs.WindowSpec):
            return self.window(spec)
        if isinstance(spec, specs.FileSpec):
            return self.file(spec)
        if isinstance(spec, specs.CmdSpec):
            return self.cmd(spec)
        if isinstance(spec, specs.ImageSpec):
            return self.image(spec)
        if isinstance(spec, specs.ElementSpec):
            return self.element(spec)
        raise TypeError(f"{kind} is not a check")

    def text(self, spec: specs.TextSpec) -> Verdict:
        if self.reader is None:
            return Verdict(False, "no screen reader: text checks need the offline OCR")
        frame = self.sandbox.screenshot()
        elements = self.reader.parse(frame)
        found = textmatch.find(elements, spec.text, exact=spec.exact)
        if found is not None:
            return Verdict(True, f"found {found.text!r}", found.center, frame)
        return Verdict(False, f"text {spec.text!r} not on screen; "
                       f"{textmatch.explain_miss(elements, spec.text)}", frame=frame)

    def element(self, spec: specs.ElementSpec) -> Verdict:
        """The element in the sandbox's accessibility tree, or among OCR's phrases for an app
        without one (see :class:`~agent.perception.elements.TreeThenText`)."""
        frame = self.sandbox.screenshot()
        try:
            found = self._element_finder().find(frame, spec.query())
        except PerceptionError as exc:
            return Verdict(False, str(exc), frame=frame)
        return Verdict(True, f"found {found.describe()}", found.center, frame, found)

    def _element_finder(self) -> TreeThenText:
        if self._elements is None:  # one per attempt: its tree is cached by frame
            text = TextAsElements(self.reader) if self.reader is not None else None
            self._elements = TreeThenText(AccessibilityTree(self.sandbox), text)
        return self._elements

    def window(self, spec: specs.WindowSpec) -> Verdict:
        titles = self.window_titles()
        pattern = re.compile(spec.title)
        if any(pattern.search(t) for t in titles):
            return Verdict(True)
        shown = ", ".join(repr(t) for t in titles[:8]) or "none"
        return Verdict(False, f"no window title matches {spec.title!r}; windows: {shown}")

    def window_titles(self) -> list[str]:
        result = self.shell(_LIST_WINDOWS, timeout_s=10)
        titles = [line for line in result.stdout.splitlines() if line.strip()]
        active = self.sandbox.screenshot().window_title
        return [active, *titles] if active and active not in titles else titles

    def file(self, spec: specs.FileSpec) -> Verdict:
        script = HOME_PATH_SH + ('test -e "$p" || exit 3; test -f "$p" || exit 4; '
                          'if [ -n "$2" ]; then sha256sum -- "$p"; else cat -- "$p"; fi')
        result = self.shell(script, spec.path, "hash" if spec.sha256 else "", timeout_s=10)
        if result.exit_code == 3:
            return Verdict(not spec.exists, f"{spec.path} does not exist")
        if not spec.exists:
            return Verdict(False, f"{spec.path} exists")
        if result.exit_code != 0:
            return Verdict(False, f"{spec.path} cannot be read: {result.stderr.strip()[:200]}")
        return _content_verdict(spec, result.stdout)

    def cmd(self, spec: specs.CmdSpec) -> Verdict:
        result = self.shell(spec.run, timeout_s=spec.timeout)
        problems = []
        if result.exit_code != spec.exit:
            problems.append(f"exit {result.exit_code}, expected {spec.exit}")
        if spec.stdout is not None and not re.search(spec.stdout, result.stdout):
            problems.append(f"stdout does not match {spec.stdout!r}")
        if not problems:
            return Verdict(True)
        return Verdict(False, f"`{spec.run}`: {'; '.join(problems)}; stdout: "
                       f"{_shown(result.stdout)}; stderr: {_shown(result.stderr)}")

    def image(self, spec: specs.ImageSpec) -> Verdict:
        frame = self.sandbox.screenshot()
        difference, problem = image_difference(frame, spec)
        if problem:
            return Verdict(False, problem, frame=frame)
        ok = difference <= spec.tolerance
        return Verdict(ok, f"image differs from {spec.reference.name} by {difference:.3f} "
                       f"(tolerance {spec.tolerance:g})", frame=frame)


def image_difference(frame: Frame, spec: specs.ImageSpec) -> tuple[float, str]:
    """Mean absolute pixel difference (0..1) of the frame's region and the reference."""
    import numpy as np
    from PIL import Image

    screen = Image.open(io.BytesIO(frame.png)).convert("RGB")
    if spec.region is not None:
        screen = screen.crop(spec.region)
    reference = Image.open(spec.reference).convert("RGB")
    if reference.size != screen.size:
        return 1.0, (f"reference {spec.reference.name} is {reference.size[0]}x"
                     f"{reference.size[1]}, the region is {screen.size[0]}x{screen.size[1]}")
    a = np.asarray(screen, dtype=np.int16)
    b = np.asarray(reference, dtype=np.int16)
    return float(np.abs(a - b).mean() / 255.0), ""


def _content_verdict(spec: specs.FileSpec, content: str) -> Verdict:
    if spec.sha256 is not None:
        digest = content.split()[0] if content.split() else ""
        return Verdict(digest == spec.sha256, f"{spec.path} has sha256 {digest[:16]}…, "
                       f"expected {spec.sha256[:16]}…")
    failures = _content_failures(spec, content)
    if not failures:
        return Verdict(True)
    return Verdict(False, f"{spec.path}: {'; '.join(failures)}; it holds {_shown(content)}")


def _content_failures(spec: specs.FileSpec, content: str) -> Sequence[str]:
    failures = []
    if spec.contains is not None and spec.contains not in content:
        failures.append(f"does not contain {spec.contains!r}")
    if spec.equals is not None and content.removesuffix("\n") != spec.equals.removesuffix("\n"):
        failures.append(f"does not equal {spec.equals!r}")
    if spec.regex is not None and not re.search(spec.regex, content):
        failures.append(f"does not match {spec.regex!r}")
    return failures


def _shown(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= SHOWN_CONTENT_CHARS else text[:SHOWN_CONTENT_CHARS] + "…")
