"""Live re-run: seconds from moving a live-model parameter slider to the redrawn dashboard.

The live model is built, run and recorded again on every parameter change, so this is the
dashboard's slowest common interaction at the default size. The goal is absolute (0.5 s on
2 CPU cores), so the ratio divides the median by that target.
"""

from __future__ import annotations

import logging
import time
from itertools import cycle

from nsm_core.bench.apptest import check_no_failure, dashboard_argv, start_dashboard
from nsm_core.bench.common import BenchSizes, Case, Result, median

logger = logging.getLogger(__name__)

TARGET_SECONDS = 0.5
# Routing temperatures the slider moves through; every move is a change, so every rerun records.
TEMPERATURES = (0.5, 1.5, 1.0, 2.0)
TEMPERATURE_KEY = "live_temperature"


def measure_live_rerun(sizes: BenchSizes) -> Result:
    from app import state

    with dashboard_argv(None):
        app_test = start_dashboard()
        app_test.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()
        check_no_failure(app_test)
        temperatures = cycle(TEMPERATURES)
        for _ in range(sizes.warmups):
            app_test.slider(key=TEMPERATURE_KEY).set_value(next(temperatures)).run()

        seconds = []
        for _ in range(sizes.dashboard_moves):
            slider = app_test.slider(key=TEMPERATURE_KEY).set_value(next(temperatures))
            start = time.perf_counter()
            slider.run()
            seconds.append(time.perf_counter() - start)
        check_no_failure(app_test)

    rerun = median(seconds)
    case = Case(
        ratio=rerun / TARGET_SECONDS,
        goal=1.0,
        figures={"rerun_seconds": round(rerun, 3), "target_seconds": TARGET_SECONDS,
                 "slowest_seconds": round(max(seconds), 3), "parameter": "routing temperature"},
    )
    return Result(
        title="Live re-run",
        compares=f"seconds to re-run the live model after a parameter slider moves ÷ {TARGET_SECONDS} s",
        cases={"default": case},
        settings={"moves": sizes.dashboard_moves, "warmups": sizes.warmups, "model": "the live model's defaults"},
    )

