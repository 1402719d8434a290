"""Figures of a task's input, drawn beside the routing: the digit image and the recall sequence.

Pure functions from the `input` description that `nsm_core.tasks` stores in a recording's
`extra` (see nsm_core/tasks/record.py) to plotly figures. A digit image has one token per
row or patch (`token_regions` gives the pixels of each); a recall sequence is a list of
tokens with a role each: "pair" (key:value), "key", "value" or "query".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "digit_image_figure",
    "input_figure",
    "prediction_figure",
    "recall_sequence_figure",
    "recall_table",
]

INPUT_KINDS = ("digit_image", "recall_sequence")
RECALL_ROLES = ("pair", "key", "value", "query")
# One colour per token role, then the two colours of a query the model got right or wrong.
ROLE_COLORS = {"pair": "#8fb8de", "key": "#b9d7a8", "value": "#f3d49b", "query": "#d9d9d9"}
CORRECT_COLOR = "#5fb760"
WRONG_COLOR = "#e06666"
HIGHLIGHT_COLOR = "#ff7f0e"


def digit_image_figure(
    image: Sequence[Sequence[float]] | np.ndarray,
    *,
    max_pixel: float = 16.0,
    token_regions: Sequence[Sequence[int]] | None = None,
    highlight_token: int | None = None,
    title: str = "Input image",
) -> go.Figure:
    """Draw a grey-scale image [R, C] with row 0 at the top, as the model reads it.

    max_pixel: the value drawn black (0 is white). token_regions: per token
    [row_start, row_stop, col_start, col_stop], used to outline `highlight_token`.
    Raises ValueError for a non-2-D image or a highlight_token outside token_regions.
    """
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise ValueError(f"image must be a non-empty 2-D array [rows, cols], got shape {pixels.shape}.")
    rows, cols = pixels.shape
    hover = [[f"row {r}, col {c}<br>value {pixels[r, c]:g} of {max_pixel:g}" for c in range(cols)]
             for r in range(rows)]

    figure = go.Figure(go.Heatmap(
        z=pixels, zmin=0.0, zmax=max_pixel, colorscale="Greys", showscale=False,
        hovertext=hover, hoverinfo="text", xgap=1, ygap=1,
    ))
    if highlight_token is not None:
        regions = list(token_regions or [])
        if not 0 <= highlight_token < len(regions):
            raise ValueError(
                f"highlight_token={highlight_token} is outside the {len(regions)} token regions; "
                f"use an index in [0, {len(regions) - 1}]."
            )
        row_start, row_stop, col_start, col_stop = regions[highlight_token]
        figure.add_shape(type="rect", x0=col_start - 0.5, x1=col_stop - 0.5, y0=row_start - 0.5,
                         y1=row_stop - 0.5, line={"color": HIGHLIGHT_COLOR, "width": 3})

    figure.update_xaxes(title="column", tickmode="linear", dtick=1, showgrid=False, constrain="domain")
    figure.update_yaxes(title="row (one token each)" if _regions_are_rows(token_regions, cols) else "row",
                        tickmode="linear", dtick=1, autorange="reversed", showgrid=False,
                        scaleanchor="x", constrain="domain")
    figure.update_layout(title=title, margin={"l": 50, "r": 10, "t": 40, "b": 40}, height=320)
    return figure


def _regions_are_rows(token_regions: Sequence[Sequence[int]] | None, cols: int) -> bool:
    return bool(token_regions) and all(
        region[1] - region[0] == 1 and region[2] == 0 and region[3] == cols for region in token_regions
    )


def recall_sequence_figure(
    tokens: Sequence[Mapping[str, Any]],
    *,
    predictions: Sequence[int] | None = None,
    title: str = "Input sequence",
) -> go.Figure:
    """Draw a recall sequence as a strip of cells, one per token in sequence order.

    tokens: dicts with "role" in RECALL_ROLES and "key", "value" or "answer" as the role
    needs. predictions: the model's value for each query in order; queries are then
    coloured by whether it matches "answer". Raises ValueError for an unknown role or a
    prediction count that differs from the query count.
    """
    if not tokens:
        figure = go.Figure()
        figure.add_annotation(text="empty sequence", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        figure.update_layout(title=title, height=140)
        return figure
    table = recall_table(tokens, predictions=predictions)

    colors, texts, hovers = [], [], []
    for position, row in table.iterrows():
        texts.append(row["token"] if row["role"] != "query" or row["prediction"] is None
                     else f"{row['token']}<br>→ {row['prediction']}")
        hovers.append(_hover(position, row))
        if row["role"] == "query" and row["correct"] is not None:
            colors.append(CORRECT_COLOR if row["correct"] else WRONG_COLOR)
        else:
            colors.append(ROLE_COLORS[row["role"]])

    # A heatmap with one colour per cell: z is the cell's index into a stepped colour scale.
    count = len(table)
    figure = go.Figure(go.Heatmap(
        z=[list(range(count))], colorscale=_stepped_scale(colors), zmin=-0.5, zmax=count - 0.5,
        showscale=False, text=[texts], texttemplate="%{text}", hovertext=[hovers], hoverinfo="text",
        xgap=2,
    ))
    figure.update_xaxes(title="token position", tickmode="linear", dtick=1 if count <= 24 else 4, showgrid=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=170, margin={"l": 10, "r": 10, "t": 40, "b": 40})
    return figure


def _hover(position: int, row: pd.Series) -> str:
    lines = [f"token {position}: {row['token']} ({row['role']})"]
    if row["role"] == "query":
        lines.append(f"answer {row['answer']}")
        if row["prediction"] is not None:
            lines.append(f"predicted {row['prediction']} ({'right' if row['correct'] else 'wrong'})")
    return "<br>".join(lines)


def _stepped_scale(colors: Sequence[str]) -> list[list[Any]]:
    """Return a plotly colour scale mapping z = i to colors[i] for i in 0..len − 1."""
    if len(colors) == 1:
        return [[0.0, colors[0]], [1.0, colors[0]]]
    scale = []
    for index, color in enumerate(colors):
        scale.append([index / len(colors), color])
        scale.append([(index + 1) / len(colors), color])
    return scale


def recall_table(tokens: Sequence[Mapping[str, Any]], *, predictions: Sequence[int] | None = None) -> pd.DataFrame:
    """Return one row per token: token text, role, key, value, answer, prediction, correct.

    Columns that do not apply to a role hold None. Raises ValueError as recall_sequence_figure.
    """
    query_count = sum(1 for token in tokens if token.get("role") == "query")
    if predictions is not None and len(predictions) != query_count:
        raise ValueError(
            f"{len(predictions)} predictions for {query_count} queries; pass one prediction per query."
        )
    rows = []
    query_index = 0
    for position, token in enumerate(tokens):
        role = token.get("role")
        if role not in RECALL_ROLES:
            raise ValueError(f"token {position} has role {role!r}; use one of {', '.join(RECALL_ROLES)}.")
        row = {"token": _token_text(token), "role": role, "key": token.get("key"), "value": token.get("value"),
               "answer": None, "prediction": None, "correct": None}
        if role == "query":
            row["answer"] = token.get("answer")
            if predictions is not None:
                row["prediction"] = int(predictions[query_index])
                row["correct"] = row["prediction"] == row["answer"]
            query_index += 1
        rows.append(row)
    columns = ["token", "role", "key", "value", "answer", "prediction", "correct"]
    # object dtype keeps integers as integers beside the None of roles a column does not apply to.
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _token_text(token: Mapping[str, Any]) -> str:
    role = token["role"]
    if role == "pair":
        return f"{token['key']}:{token['value']}"
    if role == "key":
        return f"k{token['key']}"
    if role == "value":
        return f"v{token['value']}"
    return f"?{token['key']}"


def prediction_figure(
    probabilities: Sequence[float] | np.ndarray,
    class_names: Sequence[str],
    *,
    label: int | None = None,
    title: str = "Prediction",
) -> go.Figure:
    """Draw the model's class probabilities [C] as bars; the top class and the label are marked.

    Raises ValueError when probabilities and class_names differ in length.
    """
    values = np.asarray(probabilities, dtype=np.float64)
    if values.ndim != 1 or len(values) != len(class_names) or len(values) == 0:
        raise ValueError(
            f"probabilities has shape {values.shape} but there are {len(class_names)} class names; "
            "pass one probability per class."
        )
    predicted = int(np.nanargmax(values)) if np.isfinite(values).any() else None
    colors = []
    for index in range(len(values)):
        if index == predicted:
            colors.append(CORRECT_COLOR if label is None or label == predicted else WRONG_COLOR)
        else:
            colors.append(ROLE_COLORS["query"])
    names = [str(name) for name in class_names]

    figure = go.Figure(go.Bar(
        x=names, y=values, marker_color=colors,
        hovertemplate="class %{x}<br>probability %{y:.3f}<extra></extra>",
    ))
    if label is not None:
        figure.add_annotation(x=names[label], y=float(np.nan_to_num(values[label])), text="label",
                              showarrow=True, arrowhead=2, ay=-30)
    figure.update_xaxes(title="class", type="category")
    figure.update_yaxes(title="probability", range=[0.0, 1.05])
    figure.update_layout(title=title, height=260, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return figure


def input_figure(extra: Mapping[str, Any], *, highlight_token: int | None = None) -> go.Figure:
    """Draw the input stored in a task recording's `extra` (its "input" entry).

    Raises ValueError when `extra` has no input description or an unknown kind.
    """
    description = extra.get("input")
    if not isinstance(description, Mapping) or description.get("kind") not in INPUT_KINDS:
        kind = description.get("kind") if isinstance(description, Mapping) else None
        raise ValueError(
            f"this recording has no drawable input (kind {kind!r}); task recordings store one of "
            f"{', '.join(INPUT_KINDS)} under extra['input']."
        )
    if description["kind"] == "digit_image":
        label = extra.get("label")
        title = "Input image" if label is None else f"Input image (label {label})"
        return digit_image_figure(description["image"], max_pixel=description.get("max_pixel", 16.0),
                                  token_regions=description.get("token_regions"),
                                  highlight_token=highlight_token, title=title)
    predictions = extra.get("prediction")
    return recall_sequence_figure(description["tokens"],
                                  predictions=predictions if isinstance(predictions, list) else None)
