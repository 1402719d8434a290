"""End to end in headless Chromium: the dashboard starts, and the layer slider redraws the heatmap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import sources
from app.screenshot import CHROMIUM, free_port, launch_browser, running_dashboard, wait_for_view
from nsm_core.recording import Recording

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RENDER_TIMEOUT_MS = 60_000
LAYER_SLIDER = "Layer (0 = initial states)"

# The states heatmap is the first Plotly chart of the States view. Its z as drawn is in
# _fullData, decoded from the base64 arrays of the figure's JSON into Float32Array rows.
# The values are the first heatmap with a finite value (a layer for NaN cells is all NaN).
STATES_Z = """() => {
    const chart = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    const heatmaps = ((chart && chart._fullData) || []).filter(trace => trace.type === 'heatmap');
    const values = heatmaps.map(trace => Array.from(trace.z, row => Array.from(row)));
    const shown = values.find(rows => rows.some(row => row.some(Number.isFinite)));
    return shown ? JSON.stringify(shown) : null;
}"""


def test_layer_slider_redraws_heatmap(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent; install Debian's chromium package (scripts/test.sh does under CI).")
    recording = Recording.open(sources.BUNDLED_DIR / sources.DEFAULT_RECORDING)

    with running_dashboard(free_port()) as url, launch_browser(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(url)
        wait_for_view(page)
        slider = page.get_by_role("slider", name=LAYER_SLIDER)
        value_before = slider.input_value()
        before = page.evaluate(STATES_Z)

        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => ({STATES_Z})() !== {json.dumps(before)}", timeout=RENDER_TIMEOUT_MS)
        value_after = slider.input_value()
        after = page.evaluate(STATES_Z)

    assert (value_before, value_after) == ("1", "2")
    # Plotly stores the values as float32, so they compare exactly with the recording.
    assert np.array_equal(np.asarray(json.loads(before), dtype=np.float32), recording.frame(0, 1).states)
    assert np.array_equal(np.asarray(json.loads(after), dtype=np.float32), recording.frame(0, 2).states)
