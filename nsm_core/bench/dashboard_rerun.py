"""Dashboard rerun: moving the layer slider in the dashboard against a bare Streamlit script.

The bare script has one layer slider and draws the dashboard's own states heatmap of that
layer, taken from the dashboard's output and parsed beforehand. The ratio is thus what the
dashboard adds to the cheapest possible page: its reads, derived frames, other charts and
controls. Both apps run in this process under AppTest, timed in alternating rounds.
"""

from __future__ import annotations

import logging
from itertools import cycle
from pathlib import Path

import plotly.graph_objects as go
import plotly.io

from nsm_core.bench.apptest import chart_specs, check_no_failure, dashboard_argv, start_dashboard
from nsm_core.bench.common import (
    BenchSizes,
    Case,
    Result,
    median,
    nsm_dims,
    paired_ratio,
    recording_data_bytes,
    scratch_dir,
    time_interleaved,
)
from nsm_core.bench.frame_read import write_synthetic_recording

logger = logging.getLogger(__name__)

GOALS = {"default": 2.0, "large": 3.0}
HEATMAP_KEY = "states_heatmap"
# Layer -> the dashboard's states heatmap at that layer, for the bare script to draw.
BARE_FIGURES: dict[int, go.Figure] = {}
BARE_SCRIPT = """
import streamlit as st

from nsm_core.bench.dashboard_rerun import BARE_FIGURES, HEATMAP_KEY

layer = st.slider("Layer", 0, len(BARE_FIGURES) - 1, key="layer")
st.plotly_chart(BARE_FIGURES[layer], key=HEATMAP_KEY)
"""


def measure_dashboard_rerun(sizes: BenchSizes, scratch_parent: Path | None = None) -> Result:
    """Time layer-slider moves on the dashboard's default recording and on a large synthetic one."""
    from app import sources

    from nsm_core.recording import Recording

    result = Result(
        title="Dashboard rerun",
        compares="dashboard rerun after moving the layer slider ÷ a bare script drawing the same heatmap",
        settings={"moves": sizes.dashboard_moves, "warmups": sizes.warmups, "page": "States"},
    )
    default_layers = Recording.open(sources.BUNDLED_DIR / sources.DEFAULT_RECORDING).num_layers
    logger.info("dashboard rerun on the default recording")
    result.cases["default"] = _measure_case(None, default_layers, sizes)
    result.cases["default"].figures["recording"] = sources.DEFAULT_RECORDING

    size, steps = sizes.dashboard_size, sizes.dashboard_steps
    with scratch_dir(recording_data_bytes(nsm_dims(size, steps)), scratch_parent, "the dashboard measurement") as folder:
        write_synthetic_recording(folder / "large.nsm", size, steps)
        logger.info("dashboard rerun on a synthetic recording of %s", size.label())
        result.cases["large"] = _measure_case(folder, size.layers, sizes)
        result.cases["large"].figures.update(size=size.to_dict(), steps=steps)
    return result


def _measure_case(recordings_dir: Path | None, num_layers: int, sizes: BenchSizes) -> Case:
    from streamlit.testing.v1 import AppTest

    from app import state

    with dashboard_argv(recordings_dir):
        dashboard = start_dashboard(recordings_dir)
        BARE_FIGURES.clear()
        for layer in range(num_layers + 1):  # also fills the dashboard's per-recording caches
            dashboard.slider(key=state.LAYER).set_value(layer).run()
            check_no_failure(dashboard)
            BARE_FIGURES[layer] = plotly.io.from_json(chart_specs(dashboard)[HEATMAP_KEY])
        bare = AppTest.from_string(BARE_SCRIPT, default_timeout=60).run()

        # Each move goes to the next layer, wrapping around, so every rerun changes the frame.
        dashboard_layers = cycle(range(num_layers + 1))
        bare_layers = cycle(range(num_layers + 1))

        def move_dashboard() -> None:
            dashboard.slider(key=state.LAYER).set_value(next(dashboard_layers)).run()

        def move_bare() -> None:
            bare.slider(key="layer").set_value(next(bare_layers)).run()

        seconds = time_interleaved({"dashboard": move_dashboard, "bare": move_bare},
                                   repeats=sizes.dashboard_moves, warmups=sizes.warmups)
        check_no_failure(dashboard)
        BARE_FIGURES.clear()

    return Case(
        ratio=paired_ratio(seconds, "dashboard", "bare"),
        goal=GOALS["default" if recordings_dir is None else "large"],
        figures={
            "layers": num_layers,
            "dashboard_rerun_ms": round(median(seconds["dashboard"]) * 1000, 1),
            "bare_rerun_ms": round(median(seconds["bare"]) * 1000, 1),
        },
    )
