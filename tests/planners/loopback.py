"""A scripted model provider on 127.0.0.1, for the real SDKs to talk to.

It speaks three wire formats: Anthropic **Messages** (``POST /v1/messages``),
OpenAI **Chat Completions** (``POST /v1/chat/completions``) and OpenAI
**Responses** (``POST /v1/responses``).  Tests queue replies per endpoint,
point an SDK at :attr:`LoopbackLLM.base_url` (Anthropic) or
:attr:`LoopbackLLM.openai_base_url` (OpenAI), and read back every request::

    with LoopbackLLM() as llm:
        llm.queue_messages(claude_message([tool_use({"action": "screenshot"})]))
        client = anthropic.Anthropic(api_key="test", base_url=llm.base_url)
        ...
        assert llm.requests[0].body["tools"][0]["display_width_px"] == 1280

When a queue is empty the endpoint's responder (see :meth:`respond_with`)
answers; without one the server answers 400 with ``x-should-retry: false``
so that a missing script fails the test at once instead of retrying.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

Json = dict[str, Any]

MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
ENDPOINTS = (MESSAGES, CHAT, RESPONSES)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    raw: bytes
    body: Any = None  # parsed JSON, or None

    def images(self) -> list[tuple[int, int]]:
        """The ``(width, height)`` of every image in the body, in order."""
        return [decode_image_size(data) for data in _image_payloads(self.body)]


@dataclass(frozen=True)
class ScriptedReply:
    """What the server answers to one request."""

    body: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Callable[[RecordedRequest], ScriptedReply | Json]


class LoopbackLLM:
    """A threaded HTTP server with a reply queue per endpoint; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[ScriptedReply]] = {path: deque() for path in ENDPOINTS}
        self._responders: dict[str, Responder] = {}
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> LoopbackLLM:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="loopback-llm", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        """The server root (what ``anthropic.Anthropic(base_url=...)`` wants)."""
        if self._server is None:
            raise RuntimeError("LoopbackLLM is not running; use it in a with block")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """The root plus ``/v1`` (what ``openai.OpenAI(base_url=...)`` wants)."""
        return f"{self.base_url}/v1"

    # -- scripting -----------------------------------------------------------

    def queue(self, path: str, *replies: ScriptedReply | Json) -> None:
        """Answer the next requests to ``path`` with ``replies``, in order."""
        with self._lock:
            self._queues[path].extend(_as_reply(r) for r in replies)

    def queue_messages(self, *replies: ScriptedReply | Json) -> None:
        self.queue(MESSAGES, *replies)

    def queue_chat(self, *replies: ScriptedReply | Json) -> None:
        self.queue(CHAT, *replies)

    def queue_responses(self, *replies: ScriptedReply | Json) -> None:
        self.queue(RESPONSES, *replies)

    def queue_error(self, path: str, status: int, message: str = "scripted failure", *,
                    retry_after_ms: int | None = 1) -> None:
        """Answer the next request to ``path`` with an error in that endpoint's format."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        self.queue(path, ScriptedReply(_error_body(path, status, message), status, headers))

    def respond_with(self, path: str, responder: Responder) -> None:
        """Answer requests to ``path`` that find the queue empty by calling ``responder``."""
        with self._lock:
            self._responders[path] = responder

    # -- inspection ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def pending(self, path: str) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._queues[path])

    # -- serving (called on the server's threads) ----------------------------

    def _answer(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self._requests.append(request)
            queue = self._queues.get(request.path)
            if queue:
                return queue.popleft()
            responder = self._responders.get(request.path)
        if responder is not None:
            return _as_reply(responder(request))
        return ScriptedReply(_error_body(request.path, 400, f"no scripted reply for "
                                                             f"{request.path}"),
                             400, {"x-should-retry": "false"})


def _as_reply(reply: ScriptedReply | Json) -> ScriptedReply:
    return reply if isinstance(reply, ScriptedReply) else ScriptedReply(reply)


def _handler_for(llm: LoopbackLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            request = RecordedRequest(
                method="POST", path=self.path.split("?")[0],
                headers={k.lower(): v for k, v in self.headers.items()},
                raw=raw, body=_parse_json(raw))
            self._send(llm._answer(request))

        def _send(self, reply: ScriptedReply) -> None:
            payload = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                # The client stopped waiting (the timeout tests): nobody is left to answer,
                # which is no error of the server's (its traceback would only be noise).
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None


def _error_body(path: str, status: int, message: str) -> Json:
    if path == MESSAGES:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error",
                400: "invalid_request_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": "server_error" if status >= 500
                      else "invalid_request_error", "code": None, "param": None}}


# -- images in recorded bodies ------------------------------------------------------


def decode_image_size(data: str) -> tuple[int, int]:
    """The size of a base64 image or ``data:`` URL."""
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return image.size


def _image_payloads(value: Any) -> list[str]:
    """Base64 images anywhere in a request body, in document order."""
    if isinstance(value, list):
        return [p for item in value for p in _image_payloads(item)]
    if not isinstance(value, dict):
        return []
    source = value.get("source")
    if value.get("type") == "image" and isinstance(source, dict):
        return [source["data"]]
    url = value.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str) and url.startswith("data:"):
        return [url]
    return [p for item in value.values() for p in _image_payloads(item)]


# -- reply builders: Anthropic Messages ----------------------------------------------

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):04d}"


def tool_use(action_input: Json, *, id: str | None = None, name: str = "computer") -> Json:
    """A ``tool_use`` content block calling the computer tool."""
    return {"type": "tool_use", "id": id or _next_id("toolu_"), "name": name,
            "input": action_input}


def text_block(text: str) -> Json:
    return {"type": "text", "text": text}


def claude_message(content: Iterable[Json], *, stop_reason: str | None = None,
                   model: str = "claude-test", input_tokens: int = 100,
                   output_tokens: int = 20, cache_read: int = 0, cache_write: int = 0) -> Json:
    """A Messages API reply; ``stop_reason`` defaults to ``tool_use`` when a tool is called."""
    blocks = list(content)
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": _next_id("msg_"), "type": "message", "role": "assistant", "model": model,
        "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_input_tokens": cache_read,
                  "cache_creation_input_tokens": cache_write},
    }


# -- reply builders: OpenAI Chat Completions ------------------------------------------


def function_call(name: str, arguments: Json | str, *, id: str | None = None) -> Json:
    """One entry of an assistant message's ``tool_calls``."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id or _next_id("call_"), "type": "function",
            "function": {"name": name, "arguments": text}}


def chat_completion(*, content: str | None = None, tool_calls: Iterable[Json] = (),
                    model: str = "local-vlm", prompt_tokens: int = 100,
                    completion_tokens: int = 20, cached_tokens: int = 0) -> Json:
    """A Chat Completions reply with one choice."""
    calls = list(tool_calls)
    message: Json = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": _next_id("chatcmpl-"), "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens,
                  "prompt_tokens_details": {"cached_tokens": cached_tokens}},
    }


# -- reply builders: OpenAI Responses ---------------------------------------------------


def computer_call(action: Json, *, call_id: str | None = None,
                  safety_checks: Iterable[Json] = ()) -> Json:
    """A ``computer_call`` output item."""
    return {"type": "computer_call", "id": _next_id("cu_"), "call_id": call_id or
            _next_id("call_"), "action": action, "pending_safety_checks": list(safety_checks),
            "status": "completed"}


def safety_check(message: str, *, code: str = "malicious_instructions",
                 id: str | None = None) -> Json:
    return {"id": id or _next_id("sc_"), "code": code, "message": message}


def output_message(text: str) -> Json:
    return {"type": "message", "id": _next_id("msg_"), "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def reasoning_item(summary: str = "") -> Json:
    return {"type": "reasoning", "id": _next_id("rs_"),
            "summary": [{"type": "summary_text", "text": summary}] if summary else []}


def response(output: Iterable[Json], *, id: str | None = None,
             model: str = "computer-use-preview", input_tokens: int = 100,
             output_tokens: int = 20, cached_tokens: int = 0) -> Json:
    """A Responses API reply."""
    return {
        "id": id or _next_id("resp_"), "object": "response", "created_at": 0,
        "model": model, "status": "completed", "output": list(output),
        "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens,
                  "input_tokens_details": {"cached_tokens": cached_tokens},
                  "output_tokens_details": {"reasoning_tokens": 0}},
    }
