"""The perception benchmarks produce well-formed figures (their values are not judged here)."""

from __future__ import annotations

import json

import pytest

from agent.perception.bench import (
    bench_injection_detector,
    bench_other_scripts,
    bench_screen_parse,
    bench_triage,
)


def test_triage_benchmark_reports_speed_and_held_out_quality() -> None:
    figure, accuracy, benign_high = bench_triage(repeats=1)
    assert accuracy["name"] == "perception.triage_held_out_accuracy"
    assert accuracy["value"] >= 0.85
    assert (benign_high["name"], benign_high["value"]) == (
        "perception.triage_held_out_benign_to_high", 0.0)
    assert set(figure) == {"name", "value", "unit", "target"}
    assert (figure["name"], figure["unit"], figure["target"]) == (
        "perception.triage_per_task_p50", "ms", 5)
    assert figure["value"] > 0
    json.dumps(figure)


@pytest.mark.slow
def test_screen_benchmark_reports_changed_and_full_parse() -> None:
    figures = bench_screen_parse(repeats=1)
    assert [(f["name"], f["target"]) for f in figures] == [
        ("perception.screen_parse_changed_p50", 400), ("perception.screen_parse_full_p50", None)]
    assert all(f["value"] > 0 for f in figures)


@pytest.mark.slow
def test_other_script_benchmark_reports_the_read_beside_its_baseline() -> None:
    (figure,) = bench_other_scripts(repeats=1)
    assert figure["name"] == "perception.screen_parse_full_other_script_p50"
    assert figure["baseline_name"] == "the same frame without the script models"
    assert figure["value"] > 0
    assert figure["baseline"] > 0


@pytest.mark.slow
def test_injection_benchmark_reports_detector_patterns_and_corpus_figures() -> None:
    figures = bench_injection_detector(repeats=1)
    assert [(f["name"], f["target"]) for f in figures] == [
        ("perception.injection_detector_changed_frame_p50", 150),
        ("perception.injection_ngrams_changed_frame_p50", None),
        ("perception.injection_patterns_changed_frame_p50", None),
        ("perception.injection_corpus_scoring", None),
        ("perception.injection_corpus_per_screen", None)]
    assert all(f["value"] > 0 for f in figures)
