"""The playback timeline: the summary's flags per (step, layer), with the chosen frame outlined.

A thin adapter over app/figures/summary.timeline_figure, which draws the flags but has no
notion of a chosen frame.
"""

from __future__ import annotations

import plotly.graph_objects as go

from app import frames
from app.figures.summary import timeline_figure
from app.state import ViewContext

FRAME_OUTLINE = "#FF2B9C"  # magenta: visible on the Cividis scale and on light and dark pages


def playback_timeline(context: ViewContext, flag: str | None = None) -> go.Figure:
    """Draw the flag timeline of the whole recording and outline the chosen (step, layer)."""
    recording = context.recording
    summary = frames.summary_table(recording, context.key)
    figure = timeline_figure(summary, flag=flag, step_labels=recording.step_labels, title="Playback timeline: flagged states")

    # Heatmap cells sit at category indices, so cell (step, layer) spans ±0.5 around them.
    # The outline is left out when the figure merged steps into blocks for display.
    heatmap = next((trace for trace in figure.data if trace.type == "heatmap"), None)
    if heatmap is not None and heatmap.x is not None and len(heatmap.x) == recording.num_steps:
        step, layer = context.playback.step, context.playback.layer
        figure.add_shape(
            type="rect", x0=step - 0.5, x1=step + 0.5, y0=layer - 0.5, y1=layer + 0.5,
            line={"color": FRAME_OUTLINE, "width": 4}, layer="above",
        )
    return figure
