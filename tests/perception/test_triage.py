"""Intent triage: accuracy of the local model, and the OpenAI-compatible triager."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

from agent.perception.embeddings import WordLlamaEmbedder
from agent.perception.errors import ModelUnavailable, TriageFailed
from agent.perception.triage import (
    CATEGORIES,
    RISK_BY_CATEGORY,
    CentroidTriager,
    OpenAITriager,
    Triager,
    load_examples,
    verdict,
)


def test_the_eval_set_is_apart_from_the_training_examples() -> None:
    training, evaluation = load_examples(), load_examples("triage_eval.jsonl")
    assert len(training) >= 180
    assert len(evaluation) >= 100
    assert not {e.task.casefold() for e in training} & {e.task.casefold() for e in evaluation}
    assert {e.category for e in evaluation} == set(CATEGORIES)


def test_local_triage_is_right_on_at_least_85_percent_of_the_eval_set(
        triager: CentroidTriager) -> None:
    evaluation = load_examples("triage_eval.jsonl")
    wrong = [(e.task, e.category, triager.classify(e.task).category) for e in evaluation
             if triager.classify(e.task).category != e.category]
    accuracy = 1 - len(wrong) / len(evaluation)
    assert accuracy >= 0.85, wrong


def test_the_held_out_set_shares_no_task_with_the_others() -> None:
    held_out = {e.task.casefold() for e in load_examples("triage_heldout.jsonl")}
    others = load_examples() + load_examples("triage_eval.jsonl")
    assert len(held_out) >= 40
    assert not held_out & {e.task.casefold() for e in others}


def test_on_the_held_out_set_no_benign_task_is_high_risk(triager: CentroidTriager) -> None:
    # Written before the high-risk rule was changed, and never tuned on: 0.85 accurate
    # with 2 of 17 benign tasks sent to high before; 0.875 and none after.
    held_out = load_examples("triage_heldout.jsonl")
    verdicts = [(e, triager.classify(e.task)) for e in held_out]
    benign_high = [e.task for e, v in verdicts
                   if RISK_BY_CATEGORY[e.category] == "low" and v.risk == "high"]
    accuracy = sum(v.category == e.category for e, v in verdicts) / len(held_out)
    assert benign_high == []
    assert accuracy >= 0.85


@pytest.mark.parametrize("task", ["Take a screenshot of the desktop",
                                  "Move the mouse to the middle of the screen"])
def test_a_benign_task_is_not_high_risk_for_its_wording(triager: CentroidTriager,
                                                        task: str) -> None:
    assert triager.classify(task).risk != "high"


@pytest.mark.parametrize(("task", "category", "risk"), [
    ("Read the error in the terminal and tell me what it means", "look_only", "low"),
    ("Delete the build folder and everything in it", "change_files", "medium"),
    ("Pay the water bill with my Visa card", "credentials_or_payments", "high"),
    ("Email the slides to the whole department", "send_or_publish", "high"),
])
def test_clear_tasks_get_their_category_and_its_risk(triager: CentroidTriager, task: str,
                                                     category: str, risk: str) -> None:
    result = triager.classify(task)
    assert (result.category, result.risk) == (category, risk)
    assert 0.0 <= result.confidence <= 1.0


def test_the_local_triager_fits_the_protocol(triager: CentroidTriager) -> None:
    assert isinstance(triager, Triager)


def test_an_unsure_low_risk_verdict_is_raised_to_medium() -> None:
    assert verdict("look_only", 0.3).risk == "medium"
    assert verdict("look_only", 0.9).risk == "low"
    assert verdict("send_or_publish", 0.3).risk == "high"


def test_every_category_has_a_risk_tier() -> None:
    assert set(RISK_BY_CATEGORY.values()) == {"low", "medium", "high"}
    assert CATEGORIES[0] == "look_only"


# -- OpenAI-compatible triager against a loopback Chat Completions server ---

@dataclass
class ChatServer:
    """Answers POST /v1/chat/completions with ``reply`` (message content) or ``status``."""

    reply: str = "{}"
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0


def _handler(state: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append({"path": self.path,
                                   "body": json.loads(self.rfile.read(length))})
            body = json.dumps(_completion(state.reply) if state.status == 200
                              else {"error": {"message": "model overloaded", "type": "server"}})
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _completion(content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "small",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def remote(chat_server: ChatServer) -> Iterator[OpenAITriager]:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{chat_server.port}/v1",
                           api_key="test-key", max_retries=0)
    yield OpenAITriager(client, model="small")
    client.close()


def test_the_remote_triager_takes_the_models_category_and_the_tiers_risk(
        chat_server: ChatServer, remote: OpenAITriager) -> None:
    chat_server.reply = json.dumps({"category": "system_settings", "confidence": 0.8,
                                    "risk": "low"})
    result = remote.classify("Install VLC")

    assert (result.category, result.risk, result.confidence) == ("system_settings", "high", 0.8)
    request = chat_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "small"
    assert request["body"]["response_format"] == {"type": "json_object"}
    assert request["body"]["messages"][-1] == {"role": "user", "content": "Install VLC"}


@pytest.mark.parametrize(("reply", "message"), [
    ("I think it is about files", "not the JSON asked for"),
    ('{"category": "gardening"}', "unknown category 'gardening'"),
    ('["look_only"]', "not the JSON asked for"),
])
def test_malformed_answers_fail_the_triage(chat_server: ChatServer, remote: OpenAITriager,
                                           reply: str, message: str) -> None:
    chat_server.reply = reply
    with pytest.raises(TriageFailed, match=message):
        remote.classify("Tidy the desktop")


def test_a_server_error_fails_the_triage(chat_server: ChatServer,
                                         remote: OpenAITriager) -> None:
    chat_server.status = 503
    with pytest.raises(TriageFailed, match="could not be reached"):
        remote.classify("Tidy the desktop")


def test_missing_model_files_name_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="pip install wordllama"):
        WordLlamaEmbedder.load(tmp_path)
