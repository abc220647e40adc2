"""Perception's cost in a model-planner run: per-step time behind the model, and peak memory.

A local-sandbox run opens a terminal and types into it through the real loop,
planned by Claude's own request-building code (:class:`ClaudeConversation`,
the SDK imported, every screenshot encoded into the history) with a model
that answers after ``MODEL_S`` (its latency, spent waiting as a client does).
Per-step time (validate, decide, execute, settle, record; not planning) and
the process's peak RSS are measured in two fresh processes, one with
perception as runs use it (OCR warmed up while the sandbox starts, each new
frame read for injection while the model plans, the task triaged) and one
without: the second is the baseline beside each figure.  Targets: at most
250 ms more per step at p95, and a peak RSS of at most 350 MiB.

The OCR read itself is also measured alone, beside RapidOCR's own wrappers of
the same two models (its ``TextDetector``/``TextRecognizer`` with their
shipped settings), on the same 1280x800 desktop frame: the memory a first
read needs beyond the loaded models.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.steps import SIZE, _Collector, figures, percentile

MODEL_S = 2.0
STEPS = 20  # p95 of 20 steps is the second slowest, not the slowest
TASK = "type some notes into a terminal window"
ROOT = Path(__file__).resolve().parents[1]


class ModelLikePlanner:
    """Claude's request building with a model that takes ``MODEL_S`` to answer: it opens
    a terminal, then types a line per turn."""

    name = "anthropic"
    model = "claude-sonnet-4-5 (simulated)"

    def __init__(self) -> None:
        from agent.planners.anthropic import ClaudeConversation

        self.conversation = ClaudeConversation(model="claude-sonnet-4-5", sandbox_size=SIZE)
        self.requests: list[dict[str, Any]] = []
        self._inputs = [{"action": "key", "text": "ctrl+alt+t"}]
        self._inputs += [{"action": "type", "text": f"note {n} of the quarterly report; "}
                         for n in range(STEPS)]

    def next_turn(self, observation: Any, outcomes: list[Any]) -> Any:
        self.conversation.observe(observation, outcomes)
        self.requests.append(self.conversation.request())
        time.sleep(MODEL_S)
        turn = len(self.requests) - 1
        if turn >= len(self._inputs):
            return self.conversation.reply([{"type": "text", "text": "Done."}], "end_turn")
        call = {"type": "tool_use", "id": f"toolu_{turn}", "name": "computer",
                "input": self._inputs[turn]}
        return self.conversation.reply([call], "tool_use")


def run_once(perception: bool) -> dict[str, Any]:
    """One run in this process: its settled steps' milliseconds and its peak RSS."""
    from agent.approvals import BrokerApprover
    from agent.loop import AgentLoop, LoopConfig
    from audit.log import AuditLog
    from policies.engine import load_profile
    from sandbox.local import LocalSandbox

    perceiver, closing = _perceiver() if perception else (None, None)
    collector = _Collector()
    with tempfile.TemporaryDirectory() as tmp, LocalSandbox(size=SIZE) as box, \
            AuditLog.open(Path(tmp) / "bench.db") as log:
        loop = AgentLoop(sandbox=box, planner=ModelLikePlanner(),
                         policy=load_profile("default"), audit=log,
                         approver=BrokerApprover(log), reporter=collector, perceiver=perceiver,
                         config=LoopConfig(max_turns=STEPS + 5, approval_timeout_s=0,
                                           settle_profile="model"))
        loop.run(TASK)
    if closing is not None:
        closing()
    done = [r.elapsed_ms for r in collector.reports[1:] if r.status == "done"]
    return {"steps_ms": done, "not_done": [r.reason for r in collector.reports
                                           if r.status != "done"],
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so
            # a child of a large `make bench` process reported the parent's size.
            "peak_rss_mib": _status_kib("VmHWM") / 1024}


def _perceiver() -> tuple[Any, Any]:
    from agent.perception.background import BackgroundPerception
    from agent.runs import LazyPerception

    lazy = LazyPerception()
    background = BackgroundPerception(lazy, warm_up=lazy.load_reader)
    return background, background.close


def ocr_read_peak(runtime: str) -> dict[str, Any]:
    """MiB a first read of a 1280x800 desktop frame needs beyond the loaded models."""
    from agent.perception.bench import desktop_frame
    from agent.perception.ocr import decode_frame

    image = decode_frame(desktop_frame(8, "10:00"))
    read = _deskhand_reader() if runtime == "deskhand" else _rapidocr_reader()
    loaded = _status_mib("VmRSS")
    started = time.perf_counter()
    words = read(image)
    return {"peak_over_models_mib": _status_mib("VmHWM") - loaded, "lines_or_words": words,
            "ms": round((time.perf_counter() - started) * 1000)}


def _deskhand_reader() -> Any:
    from agent.perception.ocr import OcrScreenParser, RapidOcrReader
    from agent.perception.regions import Image

    parser = OcrScreenParser(RapidOcrReader.load(threads=1))

    def read(image: Image) -> int:
        height, width = image.shape[:2]
        return len(parser.reader.read(image, [(0, 0, width, height)]))
    return read


def _rapidocr_reader() -> Any:
    """RapidOCR's own detector and recogniser wrappers, with its shipped config."""
    import rapidocr_onnxruntime  # type: ignore[import-untyped]
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector  # type: ignore[import-untyped]
    from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer  # type: ignore[import-untyped]
    from rapidocr_onnxruntime.utils import read_yaml  # type: ignore[import-untyped]

    package = Path(rapidocr_onnxruntime.__file__).parent
    config = read_yaml(str(package / "config.yaml"))
    for part in ("Det", "Rec"):
        config[part]["model_path"] = str(package / config[part]["model_path"])
        config[part]["intra_op_num_threads"] = 1
    detector, recognizer = TextDetector(config["Det"]), TextRecognizer(config["Rec"])

    def read(image: Any) -> int:
        quads, _ = detector(image)
        crops = [image[int(q[:, 1].min()):int(q[:, 1].max()) + 1,
                       int(q[:, 0].min()):int(q[:, 0].max()) + 1] for q in quads]
        return len(recognizer(crops)[0])
    return read


def _status_mib(field: str) -> int:
    return _status_kib(field) // 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _in_fresh_process(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.perception_overhead", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"perception_overhead {' '.join(args)} failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_benchmarks() -> list[dict[str, Any]]:
    without = _in_fresh_process("run", "without")
    with_perception = _in_fresh_process("run", "with")
    ours, theirs = _in_fresh_process("ocr", "deskhand"), _in_fresh_process("ocr", "rapidocr")
    for result in (without, with_perception):
        if len(result["steps_ms"]) < STEPS:
            raise RuntimeError(f"only {len(result['steps_ms'])} of {STEPS} steps ran: "
                               f"{result['not_done']}")
    p95_without = percentile(without["steps_ms"], 95)
    rows = figures("perception.step_without", without["steps_ms"])
    rows += figures("perception.step_with_background_reading", with_perception["steps_ms"])
    rows.append({"name": "perception.step_p95_extra", "unit": "ms", "target": 250,
                 "value": round(percentile(with_perception["steps_ms"], 95) - p95_without, 1),
                 "baseline": round(p95_without, 1)})
    rows.append({"name": "perception.peak_rss_model_run", "unit": "MiB", "target": 350,
                 "value": round(with_perception["peak_rss_mib"], 1),
                 "baseline": round(without["peak_rss_mib"], 1),
                 "note": "baseline: the same run without perception"})
    rows.append({"name": "perception.ocr_first_read_peak_over_models", "unit": "MiB",
                 "value": ours["peak_over_models_mib"], "target": None,
                 "baseline": theirs["peak_over_models_mib"],
                 "note": "baseline: RapidOCR's own TextDetector/TextRecognizer, shipped config"})
    return rows


def main(argv: list[str]) -> int:
    """``run with|without`` or ``ocr deskhand|rapidocr``: one measurement, one JSON line."""
    kind, choice = argv
    result = run_once(choice == "with") if kind == "run" else ocr_read_peak(choice)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
