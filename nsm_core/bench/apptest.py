"""Drive the dashboard in-process with Streamlit's AppTest, for the dashboard measurements.

The dashboard (package `app`) is imported only here and only when a dashboard measurement
runs, so the engine's measurements work in a checkout without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The first run of the dashboard imports torch and plotly, and on a large recording it scans
# every frame for the summary. Later runs are far quicker.
APPTEST_TIMEOUT_SECONDS = 600


def dashboard_available() -> bool:
    return importlib.util.find_spec("app.streamlit_app") is not None


def dashboard_entry() -> Path:
    import app

    return Path(app.__file__).resolve().parent / "streamlit_app.py"


@contextlib.contextmanager
def dashboard_argv(recordings_dir: Path | None) -> Iterator[None]:
    """Set sys.argv as `streamlit run app/streamlit_app.py [-- --recordings-dir DIR]` would."""
    from app import sources

    saved = sys.argv
    sys.argv = [str(dashboard_entry())]
    if recordings_dir is not None:
        sys.argv += [sources.RECORDINGS_DIR_FLAG, str(recordings_dir)]
    try:
        yield
    finally:
        sys.argv = saved


def start_dashboard(recordings_dir: Path | None = None):
    """Run the dashboard once; with recordings_dir, switch to its only recording.

    Returns the AppTest. Call inside dashboard_argv(recordings_dir).
    """
    from streamlit.testing.v1 import AppTest

    from app import state

    app_test = AppTest.from_file(str(dashboard_entry()), default_timeout=APPTEST_TIMEOUT_SECONDS).run()
    if recordings_dir is not None:
        app_test.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    check_no_failure(app_test)
    return app_test


def check_no_failure(app_test) -> None:
    """Raise RuntimeError with the dashboard's message if its last run failed."""
    failures = [element.value for element in app_test.exception] + [element.value for element in app_test.error]
    if failures:
        raise RuntimeError(f"the dashboard failed during the benchmark: {failures}")


def chart_specs(app_test) -> dict[str, str]:
    """Return key -> Plotly figure JSON of every chart of the last run, as sent to the browser."""
    return {element.key or f"chart {index}": element.proto.spec
            for index, element in enumerate(app_test.get("plotly_chart"))}


def figure_notes(spec: str) -> str:
    """Return the text a figure shows besides its data: title, subtitle, annotations, axis titles."""
    figure: dict[str, Any] = json.loads(spec)
    layout = figure.get("layout", {})
    title = layout.get("title")
    texts = [_text(title), _text(title.get("subtitle")) if isinstance(title, dict) else ""]
    texts += [annotation.get("text", "") for annotation in layout.get("annotations", [])]
    texts += [_text(value.get("title")) for name, value in layout.items()
              if name.startswith(("xaxis", "yaxis")) and isinstance(value, dict)]
    return "\n".join(text for text in texts if text)


def _text(title: Any) -> str:
    if isinstance(title, dict):
        return str(title.get("text", ""))
    return "" if title is None else str(title)
