"""Payload: the largest figure the dashboard sends to the browser for a large recording.

Every page of the dashboard is drawn on a large synthetic recording under AppTest, and each
chart's Plotly JSON (what Streamlit sends) is measured. The ratio is the largest figure's
bytes divided by the per-figure cap of the figure builders (app.figures.style.MAX_FIGURE_BYTES).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nsm_core.bench.apptest import chart_specs, check_no_failure, dashboard_argv, figure_notes, start_dashboard
from nsm_core.bench.common import BenchSizes, Case, Result, nsm_dims, recording_data_bytes, scratch_dir
from nsm_core.bench.frame_read import write_synthetic_recording

logger = logging.getLogger(__name__)

PAGES = ("views/states.py", "views/trajectories.py", "views/routing.py", "views/gates.py", "views/summary.py")
REDUCTION_WORDS = "mean over blocks"


def measure_payload(sizes: BenchSizes, scratch_parent: Path | None = None) -> Result:
    from app.figures.style import MAX_FIGURE_BYTES

    size, steps = sizes.dashboard_size, sizes.dashboard_steps
    with scratch_dir(recording_data_bytes(nsm_dims(size, steps)), scratch_parent, "the payload measurement") as folder:
        write_synthetic_recording(folder / "large.nsm", size, steps)
        figures = page_figures(folder)

    largest_page, largest_key = max(figures, key=lambda where: len(figures[where]["spec"]))
    largest = len(figures[largest_page, largest_key]["spec"])
    case = Case(
        ratio=largest / MAX_FIGURE_BYTES,
        goal=1.0,
        figures={
            "size": size.to_dict(),
            "steps": steps,
            "largest_figure_bytes": largest,
            "largest_figure": f"{largest_page} {largest_key}",
            "cap_bytes": MAX_FIGURE_BYTES,
            "bytes_per_page": {page: sum(len(entry["spec"]) for (where, _), entry in figures.items() if where == page)
                               for page in PAGES},
            "reduced_figures": sorted(f"{page} {key}" for (page, key), entry in figures.items()
                                      if REDUCTION_WORDS in entry["notes"]),
        },
    )
    return Result(
        title="Payload",
        compares="bytes of the largest figure sent to the browser ÷ the per-figure cap",
        cases={"large": case},
        settings={"pages": list(PAGES)},
    )


def page_figures(recordings_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Draw every page on the only recording in recordings_dir at layer 1.

    Returns (page, chart key) -> {"spec": figure JSON, "notes": the figure's title, subtitle,
    annotation and axis texts}.
    """
    from app import state

    figures: dict[tuple[str, str], dict[str, Any]] = {}
    with dashboard_argv(recordings_dir):
        app_test = start_dashboard(recordings_dir)
        app_test.slider(key=state.LAYER).set_value(1).run()
        for page in PAGES:
            logger.info("drawing %s", page)
            app_test.switch_page(page).run()
            check_no_failure(app_test)
            for key, spec in chart_specs(app_test).items():
                figures[page, key] = {"spec": spec, "notes": figure_notes(spec)}
    return figures
