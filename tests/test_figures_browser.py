"""Figures as plotly.js draws them in headless Chromium: literal labels, hover names, animation frames."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from app.figures.routing import routing_heatmap
from app.figures.states import states_animation
from app.screenshot import CHROMIUM, launch_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELS = ["<s>", "a<b", "é(1/2)", "&amp;", "\n", "</s>"]
CHART = "document.querySelector('.js-plotly-plot')"


@pytest.fixture
def page(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent; install Debian's chromium package (scripts/test.sh does under CI).")
    with launch_browser(tmp_path / "profile") as browser:
        yield browser.new_page()


def _open(page, fig, tmp_path) -> None:
    path = tmp_path / "figure.html"
    fig.write_html(path, include_plotlyjs=True, auto_play=False)  # plotly.js inline: no network
    page.goto(path.as_uri())
    page.wait_for_function(f"() => {CHART} && {CHART}._fullLayout")


def _cell_point(page, x_category: str, y_category: str) -> list[float]:
    """Return the page coordinates of the centre of heatmap cell (x, y)."""
    return page.evaluate(
        """([x, y]) => { const chart = document.querySelector('.js-plotly-plot');
            const layout = chart._fullLayout, box = chart.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(x), box.top + layout._size.t + layout.yaxis.d2p(y)]; }""",
        [x_category, y_category],
    )


def _hover_text(page, x_category: str, y_category: str) -> str:
    """Move the mouse over the heatmap cell (x, y) and return the hover label's text."""
    page.mouse.move(*_cell_point(page, x_category, y_category))
    page.wait_for_selector(".hoverlayer .hovertext")
    return page.evaluate("Array.from(document.querySelectorAll('.hoverlayer .hovertext')).map(e => e.textContent).join('|')")


def _pixel(page, point: list[float]) -> tuple[int, int, int]:
    png = page.screenshot(clip={"x": point[0], "y": point[1], "width": 1, "height": 1})
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0))


def test_tick_labels_drawn_literally(page, tmp_path):
    weights = np.full((len(LABELS), 2), 0.5, dtype=np.float32)
    _open(page, routing_heatmap(weights, LABELS), tmp_path)
    ticks = page.evaluate("Array.from(document.querySelectorAll('.ytick text')).map(e => e.textContent)")
    assert ticks == ["<s>", "a<b", "é(1/2)", "&amp;", "\\n", "</s>"]


def test_hover_names_token_and_non_finite_value(page, tmp_path):
    weights = np.full((len(LABELS), 2), 0.25, dtype=np.float32)
    weights[1, 1] = np.nan
    weights[0, 0] = 0.125
    _open(page, routing_heatmap(weights, LABELS), tmp_path)

    assert _hover_text(page, "state 0", "token 0: &lt;s&gt;") == "token 0: <s>state 0routing weight: 0.125"
    assert _hover_text(page, "state 1", "token 1: a&lt;b") == "token 1: a<bstate 1routing weight: NaN"


def test_animation_frames_draw_each_layer(page, tmp_path):
    by_layer = np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3) - 8.0  # [L+1=3, S=2, D=3]
    by_layer[2, 0, 0] = np.nan  # the grey layer and NaN symbols change between frames too
    _open(page, states_animation(by_layer), tmp_path)

    page.evaluate(
        f"""() => Plotly.animate({CHART}, ['layer 2'],
            {{frame: {{duration: 0, redraw: true}}, transition: {{duration: 0}}, mode: 'immediate'}})"""
    )
    page.wait_for_function(f"() => {CHART}.layout.sliders[0].active === 2")
    drawn = page.evaluate(
        f"""() => JSON.stringify(Array.from({CHART}._fullData.find(t => t.name === 'value').z,
            row => Array.from(row, v => (v === null || Number.isNaN(v)) ? null : v)))"""
    )
    expected = by_layer[2].tolist()
    expected[0][0] = None
    assert json.loads(drawn) == expected

    # Layer 2's largest value, 9, is the top of the range (−9, 9): the darkest red of RdBu.
    page.mouse.move(0, 0)
    red = _pixel(page, _cell_point(page, "dim 2", "state 1"))
    assert all(abs(got - want) <= 12 for got, want in zip(red, (103, 0, 31))), red
