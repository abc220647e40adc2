"""Screenshot sizing, encoding, trimming arithmetic, prices and the planner benchmark."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from agent.planners.bench import run_benchmarks, session_frames, simulate
from agent.planners.pricing import CLAUDE_PRICES, estimate_cost, price_for
from agent.planners.screenshots import (
    MAX_IMAGE_PIXELS,
    ScreenshotEncoder,
    fit_within,
    images_to_hide,
    recommended_model_size,
)
from audit.records import Usage
from sandbox.base import Size
from tests.planners.conftest import make_frame


@pytest.mark.parametrize(("sandbox", "expected"), [
    (Size(1280, 800), Size(1280, 800)),
    (Size(1024, 768), Size(1024, 768)),
    (Size(1920, 1080), Size(1365, 768)),
    (Size(2560, 1600), Size(1280, 800)),
    (Size(1600, 1200), Size(1024, 768)),
    (Size(800, 600), Size(800, 600)),
    (Size(1366, 768), Size(1366, 768)),
])
def test_recommended_sizes(sandbox: Size, expected: Size) -> None:
    assert recommended_model_size(sandbox) == expected


@settings(max_examples=300, deadline=None)
@given(st.builds(Size, st.integers(64, 8192), st.integers(64, 8192)))
def test_recommended_sizes_never_upscale_and_keep_the_aspect_ratio(sandbox: Size) -> None:
    size = recommended_model_size(sandbox)
    assert size.width <= sandbox.width
    assert size.height <= sandbox.height
    assert size.width * size.height <= MAX_IMAGE_PIXELS
    # floor rounding moves each side by under one pixel from the exact scale
    scale = size.width / sandbox.width
    assert abs(sandbox.height * scale - size.height) <= 1 + sandbox.height / sandbox.width


def test_fit_within_can_upscale_when_asked() -> None:
    assert fit_within(Size(200, 100), Size(1280, 800)) == Size(200, 100)
    assert fit_within(Size(200, 100), Size(1280, 800), upscale=True) == Size(1280, 640)


def test_encoder_scales_converts_and_remembers() -> None:
    frame = make_frame(Size(1920, 1080))
    encoder = ScreenshotEncoder(image_format="jpeg")

    image = encoder.encode(frame, Size(1365, 768))

    assert image.media_type == "image/jpeg"
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (1365, 768))
    assert encoder.encode(frame, Size(1365, 768)) is image
    assert ScreenshotEncoder().encode(frame, frame.size).data == frame.png


@pytest.mark.parametrize(("total", "keep", "chunk", "hidden"), [
    (3, 3, 5, 0), (7, 3, 5, 0), (8, 3, 5, 5), (12, 3, 5, 5), (13, 3, 5, 10), (9, 3, 1, 6),
])
def test_images_are_hidden_in_whole_chunks(total: int, keep: int, chunk: int,
                                           hidden: int) -> None:
    assert images_to_hide(total, keep, chunk) == hidden


def test_prices_match_dated_snapshots_and_unknown_models_cost_nothing() -> None:
    assert price_for("claude-sonnet-4-5-20250929", CLAUDE_PRICES) == CLAUDE_PRICES[
        "claude-sonnet-4-5"]
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert estimate_cost("claude-opus-4-1", usage, CLAUDE_PRICES).usd == pytest.approx(90.0)
    unknown = estimate_cost("my-local-model", usage, CLAUDE_PRICES)
    assert unknown.usd == 0
    assert "my-local-model" in unknown.note


def test_chunked_trimming_sends_less_and_breaks_the_cache_rarely() -> None:
    frames = session_frames(steps=12)

    chunked = simulate(max_screenshots=3, screenshot_chunk=5, frames=frames)
    keep_all = simulate(max_screenshots=12, screenshot_chunk=1, frames=frames)
    every_turn = simulate(max_screenshots=3, screenshot_chunk=1, frames=frames)

    assert keep_all.sent == sum(range(1, 13))
    assert keep_all.cache_breaks == 0
    # 1..7 screenshots, then 5 hidden at once: 3..7 again
    assert chunked.sent == sum(range(1, 8)) + sum(range(3, 8))
    assert chunked.peak == 7
    assert chunked.cache_breaks == 1
    assert every_turn.cache_breaks == 9
    assert chunked.billed_equivalent() < every_turn.billed_equivalent()


def test_run_benchmarks_reports_every_figure_against_its_baseline() -> None:
    figures = run_benchmarks()

    assert {tuple(sorted(f)) for f in figures} == {("baseline", "name", "target", "unit",
                                                     "value")}
    by_name = {f["name"]: f for f in figures}
    sent = by_name["planner.anthropic.image_tokens_sent_30_steps"]
    assert sent["value"] <= sent["target"] < sent["baseline"]
    breaks = by_name["planner.anthropic.prompt_cache_breaks_30_steps"]
    assert breaks["value"] <= breaks["target"] < breaks["baseline"]
