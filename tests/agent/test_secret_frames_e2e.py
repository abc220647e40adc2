"""Secrets never leave as pixels, end to end: a real desktop (local Xvfb), the real
anthropic SDK against the loopback provider, the run builder's wiring, the real OCR.

Each test reads back everything a secret could have leaked into — every frame in
the database, the HTML export's images, the GIF's frames, every image the model
provider received — with the OCR, and greps every byte of them and of the
database, its WAL and head files: no trace of the value.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from PIL import Image, ImageSequence

from agent.approvals import BrokerApprover
from agent.loop import AgentLoop, LoopConfig, RunSummary
from agent.perception.ocr import OcrScreenParser, RapidOcrReader
from agent.perception.redaction import MARK, FrameRedactor
from agent.perception.textmatch import fold
from agent.planners.anthropic import AnthropicPlanner
from agent.runs import RunOptions, open_run, plan_run
from agent.settings import Settings
from audit.export import export_gif, export_html
from audit.log import AuditLog
from policies.engine import load_policy
from sandbox.base import Frame, Size
from sandbox.local import LocalSandbox
from tests.planners.loopback import (
    LoopbackLLM,
    RecordedRequest,
    claude_message,
    text_block,
    tool_use,
)

SCREEN = Size(1280, 800)
PLACEHOLDER_VALUE = "tangerine-velvet-42-orbit"
LITERAL_KEY = "sk-ant-api03-Zq7mK3vR9tLw2XpB8nHs3dFy"
POLICY = """\
name: secrets-e2e
rules:
  - id: ui.allow
    effect: allow
    reason: Ordinary desktop work.
    match:
      actions: [screenshot, cursor_position, zoom, wait, mouse_move, click, mouse_down,
                mouse_up, drag, scroll, type, key, hold_key]
  - id: text.secret
    effect: allow
    secret: true
    reason: Keys may be typed on this desktop; they are stored masked.
    match: {actions: [type], detectors: [anthropic_key, high_entropy]}
"""

pytestmark = [pytest.mark.x11, pytest.mark.slow]


@pytest.fixture(scope="module")
def reader() -> RapidOcrReader:
    return RapidOcrReader.load(threads=2)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets-e2e.yaml"
    path.write_text(POLICY)
    return path


def _terminal_turns(*commands: str) -> list[dict[str, object]]:
    opening = claude_message([tool_use({"action": "key", "text": "ctrl+alt+t"}),
                              tool_use({"action": "wait", "duration": 1})])
    typed = [claude_message([tool_use({"action": "type", "text": c})]) for c in commands]
    return [opening, *typed, claude_message([text_block("Done.")])]


def _run_with_builder(tmp_path: Path, llm: LoopbackLLM, policy: Path,
                      secrets: tuple[str, ...], check: list[str],
                      sandbox: str = "local") -> tuple[RunSummary, str]:
    settings = Settings(home=tmp_path).with_overrides(
        planner="anthropic", model="claude-sonnet-4-6", base_url=llm.base_url,
        sandbox=sandbox, db=tmp_path / "audit.db", policy=str(policy), secret=secrets,
        approval_timeout_s=0.0, max_steps=10, screen=str(SCREEN))
    plan = plan_run(settings, task="Open a terminal and run the commands")
    with open_run(plan, RunOptions()) as run:
        summary = run.loop.run(plan.task)
        checked = run.sandbox.check(check).stdout
        _keep_database_files(tmp_path)  # the WAL is folded in and removed at close
    return summary, checked


def _keep_database_files(folder: Path) -> None:
    kept = folder / "while-open"
    kept.mkdir()
    for path in folder.glob("audit.db*"):
        if path.is_file():
            (kept / path.name).write_bytes(path.read_bytes())
    assert (kept / "audit.db-wal").exists()


# -- reading everything back --------------------------------------------------


def _pngs_in_database(db: Path) -> Iterator[tuple[str, bytes]]:
    with AuditLog.open(db) as log:
        with sqlite3.connect(db) as conn:
            shas = [row[0] for row in conn.execute("SELECT sha256 FROM blobs")]
        for sha in shas:
            yield sha, log.get_frame_png(sha)


def _images_in_html(html: Path) -> list[bytes]:
    found = re.findall(rb"data:image/(?:webp|png);base64,([A-Za-z0-9+/=]+)", html.read_bytes())
    return [base64.b64decode(data) for data in found]


def _gif_frames(gif: Path) -> list[bytes]:
    out = []
    with Image.open(gif) as image:
        for frame in ImageSequence.Iterator(image):
            buffer = io.BytesIO()
            frame.convert("RGB").save(buffer, format="PNG")
            out.append(buffer.getvalue())
    return out


def _images_sent(requests: list[RecordedRequest]) -> list[bytes]:
    found: dict[str, bytes] = {}
    for request in requests:
        for data in re.findall(rb'"data":\s*"([A-Za-z0-9+/=]+)"', request.raw):
            image = base64.b64decode(data)
            found[hashlib.sha256(image).hexdigest()] = image
    return list(found.values())


def _what_deskhand_sent(request: RecordedRequest, model_typed_it: bool) -> bytes:
    """The request's bytes; without the model's own earlier turns when it typed the value.

    A model that typed a key literally has it in its own history; what
    deskhand must not add is the value in a screenshot or a tool result.
    """
    if not model_typed_it:
        return request.raw
    users = [m for m in request.body["messages"] if m["role"] == "user"]
    return json.dumps(users).encode() + json.dumps(request.body.get("system")).encode()


def _session_id(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT id FROM sessions").fetchone()[0])


def _read(reader: RapidOcrReader, image_bytes: bytes) -> str:
    with Image.open(io.BytesIO(image_bytes)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        frame = Frame.from_png(buffer.getvalue(), image.width, image.height)
    return " ".join(e.text for e in OcrScreenParser(reader).parse_full(frame))


def _traces(value: str, text: str, window: int = 8) -> list[str]:
    """Pieces of ``value`` (``window`` folded characters) that ``text`` shows."""
    needle, haystack = fold(value), fold(text)
    return sorted({needle[i:i + window] for i in range(len(needle) - window + 1)
                   if needle[i:i + window] in haystack})


def _assert_no_trace_anywhere(reader: RapidOcrReader, tmp_path: Path, value: str,
                              requests: list[RecordedRequest], *,
                              model_typed_it: bool = False) -> dict[str, int]:
    db = tmp_path / "audit.db"
    with AuditLog.open(db) as log:
        session = _session_id(db)
        export_html(log, session, tmp_path / "run.html")
        export_gif(log, session, tmp_path / "run.gif")
    images = {
        "database": [png for _, png in _pngs_in_database(db)],
        "html": _images_in_html(tmp_path / "run.html"),
        "gif": _gif_frames(tmp_path / "run.gif"),
        "provider": _images_sent(requests),
    }
    readings: dict[str, str] = {}
    for where, found in images.items():
        assert found, f"nothing to read in the {where}"
        readings[where] = " | ".join(_read(reader, image) for image in found)
        assert _traces(value, readings[where]) == [], where
    files = [p for p in tmp_path.glob("audit.db*") if p.is_file()]
    files += list((tmp_path / "while-open").glob("*"))
    files += [tmp_path / "run.html", tmp_path / "run.gif"]
    for path in files:
        assert value.encode() not in path.read_bytes(), path
    for request in requests:
        assert value.encode() not in _what_deskhand_sent(request, model_typed_it)
    assert MARK in readings["database"], "no stored frame shows the redaction mark"
    return {where: len(found) for where, found in images.items()}


# -- the tests ------------------------------------------------------------------


def _docker_ready() -> bool:
    from sandbox.manage import docker_ready

    return docker_ready()[0]


@pytest.mark.parametrize("sandbox", [
    "local",
    pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.skipif(
        "not _docker_ready()", reason="no Docker engine or no deskhand image")]),
])
def test_a_placeholder_secret_configures_a_tool_and_never_shows(
        tmp_path: Path, reader: RapidOcrReader, policy_file: Path,
        monkeypatch: pytest.MonkeyPatch, sandbox: str) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("E2E_TOKEN_SOURCE", PLACEHOLDER_VALUE)
    with LoopbackLLM() as llm:
        llm.queue_messages(*_terminal_turns(
            "export TOKEN={{secret:TOKEN}}\n", "echo $TOKEN\n",
            "printf %s \"$TOKEN\" | sha256sum > ~/token.sha\n"))
        summary, stored = _run_with_builder(
            tmp_path, llm, policy_file, ("TOKEN=E2E_TOKEN_SOURCE",),
            ["cat", "token.sha"], sandbox)
        requests = llm.requests

    assert summary.outcome == "done", summary.reason
    assert stored.split()[0] == hashlib.sha256(PLACEHOLDER_VALUE.encode()).hexdigest()
    assert "{{secret:TOKEN}}" in requests[0].raw.decode()  # the planner was told the name
    counts = _assert_no_trace_anywhere(reader, tmp_path, PLACEHOLDER_VALUE, requests)
    assert counts["provider"] >= 3
    _assert_redactions_recorded(tmp_path / "audit.db")


def test_a_literal_key_echoed_by_a_terminal_never_shows(
        tmp_path: Path, reader: RapidOcrReader, policy_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with LoopbackLLM() as llm:
        llm.queue_messages(*_terminal_turns(
            f"export DEMO_KEY={LITERAL_KEY}\n", "echo $DEMO_KEY\n",
            "printf %s \"$DEMO_KEY\" | wc -c > ~/key.len\n"))
        summary, stored = _run_with_builder(tmp_path, llm, policy_file, (),
                                            ["cat", "key.len"])
        requests = llm.requests

    assert summary.outcome == "done", summary.reason
    assert stored.strip() == str(len(LITERAL_KEY))
    _assert_no_trace_anywhere(reader, tmp_path, LITERAL_KEY, requests, model_typed_it=True)
    _assert_redactions_recorded(tmp_path / "audit.db")


def _assert_redactions_recorded(db: Path) -> None:
    with AuditLog.open(db) as log:
        steps = log.steps(_session_id(db))
        events = log.events(_session_id(db))
    redacted = [s for s in steps if s.output and s.output.get("redacted")]
    assert redacted, "no step says which regions it redacted"
    boxes = (redacted[0].output or {})["redacted"]
    assert all(isinstance(v, int) for box in boxes for v in box)
    assert all("redact_ms" in s.timings_ms for s in steps if s.status == "done")
    assert any(e.kind == "frame_redacted" and e.data["regions"] >= 1 for e in events)


def test_a_frame_that_cannot_be_read_after_a_secret_was_typed_is_not_sent(
        tmp_path: Path, reader: RapidOcrReader, policy_file: Path) -> None:
    # An OCR deadline of zero: no frame can ever be read in time.
    redactor = FrameRedactor(OcrScreenParser(reader), ocr_timeout_s=0.0)
    with LoopbackLLM() as llm, anthropic.Anthropic(api_key="test", base_url=llm.base_url,
                                                   max_retries=0) as client:
        llm.queue_messages(*_terminal_turns(f"export DEMO_KEY={LITERAL_KEY}\n",
                                            "echo $DEMO_KEY\n"))
        planner = AnthropicPlanner(client, model="claude-sonnet-4-6", sandbox_size=SCREEN)
        with AuditLog.open(tmp_path / "audit.db") as log, LocalSandbox(size=SCREEN) as box:
            loop = AgentLoop(sandbox=box, planner=planner, policy=load_policy(policy_file),
                             audit=log, approver=BrokerApprover(log), frame_guard=redactor,
                             config=LoopConfig(approval_timeout_s=0, max_turns=10))
            summary = loop.run("Open a terminal and run the commands")
        requests = llm.requests
    redactor.close()

    assert summary.outcome == "done", summary.reason
    before_secret, after_secret = requests[1], requests[2]
    assert _images_in_last_turn(before_secret) == 1  # readable or not, nothing to hide yet
    for request in requests[2:]:
        assert _images_in_last_turn(request) == 0
        assert "screenshot withheld" in request.raw.decode()
    assert len(_images_sent(requests)) == len(_images_sent(requests[:2]))
    assert after_secret is not None


def _images_in_last_turn(request: RecordedRequest) -> int:
    last = request.body["messages"][-1]
    return len(re.findall(r'"type":\s*"image"', str(last).replace("'", '"')))
