"""Heatmap layers shared by the builders: reduction, non-finite marks, threshold, axis labels.

A matrix becomes up to four traces on one pair of category axes, drawn bottom to top:

1. grey cells where a cell (or a reduced block) has no finite value, with hover naming it;
2. faint cells below a threshold, with hover giving the exact value;
3. the coloured cells, with hover giving row, column and exact value;
4. symbols on NaN/±Inf cells ("x" NaN, "▲" +Inf, "▼" −Inf) with legend entries.

Axis categories are the full hover names ("token 3: a<b", "state 2"), escaped once. Tick text
is a short form of the same names. Hover templates refer to the categories, so no label text
ends up inside a template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from app.figures.style import (
    BELOW_THRESHOLD_COLOR,
    MAX_FIGURE_CELLS,
    MAX_MARKED_CELLS,
    NON_FINITE_COLOR,
    NON_FINITE_SYMBOLS,
    VALUE_FORMAT,
    block_bounds,
    choose_blocks,
    colorbar,
    describe_non_finite,
    escape_label,
    reduce_blocks,
    reduction_note,
    shorten,
    state_swatch,
    tick_positions,
)

MAX_BLOCK_LABEL_CHARS = 40


@dataclass(frozen=True)
class Axis:
    """One axis of a heatmap: what an entry is called, the axis title, optional per-entry labels."""

    singular: str  # "token"
    plural: str  # "tokens"
    title: str  # axis title with unit, such as "token (position: text)"
    labels: Sequence[str] | None = None  # plain text of each entry (token text); None for indices
    state_colors: bool = False  # ticks get each state's colour swatch
    start: int = 0  # number shown for the first entry, such as 1 for layers 1..L


@dataclass(frozen=True)
class ColorSpec:
    """Colour scale of the coloured cells and the title of their colour bar."""

    colorscale: str
    zmin: float
    zmax: float
    title: str
    zmid: float | None = None


@dataclass
class HeatmapLayers:
    """The traces of one heatmap and what its axes need."""

    traces: list = field(default_factory=list)
    row_categories: list[str] = field(default_factory=list)
    column_categories: list[str] = field(default_factory=list)
    row_ticks: tuple[list[str], list[str]] = ([], [])
    column_ticks: tuple[list[str], list[str]] = ([], [])
    notes: list[str] = field(default_factory=list)


def axis_categories(axis: Axis, length: int, block: int) -> tuple[list[str], list[str], list[str]]:
    """Return (categories, tick values, tick texts) of an axis of `length` entries in blocks of `block`."""
    categories, ticks = [], []
    for first, last in block_bounds(length, block):
        shown_first, shown_last = first + axis.start, last + axis.start
        if first == last:
            name = f"{axis.singular} {shown_first}"
            tick = str(shown_first)
            if axis.labels is not None:
                name += f": {escape_label(axis.labels[first])}"
                tick = escape_label(shorten(str(axis.labels[first])))
            elif axis.state_colors:
                tick = state_swatch(first, str(first))
        else:
            name = f"{axis.plural} {shown_first}–{shown_last}"
            tick = f"{shown_first}–{shown_last}"
            if axis.labels is not None:
                joined = " ".join(str(label) for label in axis.labels[first : last + 1])
                name += f": {escape_label(shorten(joined, MAX_BLOCK_LABEL_CHARS))}"
        categories.append(name)
        ticks.append(tick)
    positions = tick_positions(len(categories))
    return categories, [categories[i] for i in positions], [ticks[i] for i in positions]


def heatmap_layers(
    matrix: np.ndarray,
    rows: Axis,
    columns: Axis,
    colors: ColorSpec,
    value_name: str,
    *,
    threshold: float | None = None,
    max_cells: int = MAX_FIGURE_CELLS,
    reduce_first: str | None = None,
    show_scale: bool = True,
    show_legend: bool = True,
    fixed_traces: bool = False,
    cell_text: np.ndarray | None = None,
) -> HeatmapLayers:
    """Build the traces of a heatmap of `matrix` [R, C] with R, C ≥ 1.

    Cells with finite values below `threshold` are drawn faintly instead of in colour. A
    matrix of more than max_cells cells is reduced by block means. The returned notes state
    the reduction and any cap on the NaN/±Inf symbols. With fixed_traces the grey
    layer and every kind of symbol trace are present even when empty, so that animation
    frames of same-shaped matrices have the same traces in the same order; the threshold
    layer is not allowed then. cell_text [R, C] (escaped) is added to each cell's hover
    when the matrix is not reduced.
    """
    if fixed_traces and threshold is not None:
        raise ValueError("fixed_traces does not support a threshold; pass threshold=None.")
    values = np.asarray(matrix, dtype=np.float32)
    row_block, column_block = choose_blocks(values.shape[0], values.shape[1], max_cells, reduce_first)
    reduction = reduce_blocks(values, row_block, column_block)
    block_values = reduction.values
    non_finite = reduction.nan + reduction.posinf + reduction.neginf

    layers = HeatmapLayers()
    layers.row_categories, *row_ticks = axis_categories(rows, values.shape[0], row_block)
    layers.column_categories, *column_ticks = axis_categories(columns, values.shape[1], column_block)
    layers.row_ticks = tuple(row_ticks)
    layers.column_ticks = tuple(column_ticks)
    trace_name = value_name
    note = reduction_note(row_block, column_block, rows.plural, columns.plural)
    if note:
        layers.notes.append(note)
        value_name = f"{value_name} (block mean)"

    x, y = layers.column_categories, layers.row_categories
    location = "%{y}<br>%{x}<br>"
    without_finite = np.isnan(block_values) & (non_finite > 0)
    if without_finite.any() or fixed_traces:
        layers.traces.append(
            go.Heatmap(
                z=np.where(without_finite, 1.0, np.nan).astype(np.float32),
                x=x,
                y=y,
                text=_kind_text(reduction, without_finite),
                colorscale=[[0.0, NON_FINITE_COLOR], [1.0, NON_FINITE_COLOR]],
                zmin=0.0,
                zmax=1.0,
                showscale=False,
                hoverongaps=False,
                hovertemplate=location + f"{value_name}: %{{text}}<extra></extra>",
                name="NaN/±Inf cells",
            )
        )

    below = np.zeros(block_values.shape, dtype=bool)
    if threshold is not None:
        with np.errstate(invalid="ignore"):
            below = np.isfinite(block_values) & (block_values < threshold)
    if below.any():
        layers.traces.append(
            go.Heatmap(
                z=np.where(below, block_values, np.nan).astype(np.float32),
                x=x,
                y=y,
                colorscale=[[0.0, BELOW_THRESHOLD_COLOR], [1.0, BELOW_THRESHOLD_COLOR]],
                showscale=False,
                hoverongaps=False,
                hovertemplate=(
                    location + f"{value_name}: %{{z:{VALUE_FORMAT}}} (below threshold {threshold:g})<extra></extra>"
                ),
                name="below threshold",
            )
        )

    coloured = np.where(np.isfinite(block_values) & ~below, block_values, np.nan).astype(np.float32)
    with_text = cell_text is not None and not reduction.reduced
    main = go.Heatmap(
        z=coloured,
        x=x,
        y=y,
        colorscale=colors.colorscale,
        zmin=colors.zmin,
        zmax=colors.zmax,
        showscale=show_scale,
        colorbar=colorbar(colors.title),
        hoverongaps=False,
        hovertemplate=location + f"{value_name}: %{{z:{VALUE_FORMAT}}}" + ("%{text}" if with_text else "") + "<extra></extra>",
        name=trace_name,
    )
    if with_text:
        main.update(text=cell_text)
    if colors.zmid is not None:
        main.update(zmid=colors.zmid)
    layers.traces.append(main)

    mark_traces, mark_note = _non_finite_marks(reduction, x, y, value_name, show_legend, keep_empty=fixed_traces)
    layers.traces.extend(mark_traces)
    if mark_note:
        layers.notes.append(mark_note)
    return layers


def place_heatmap(fig: go.Figure, layers: HeatmapLayers, *, row: int | None = None, col: int | None = None) -> None:
    """Add the layers' traces to `fig` (at subplot row, col if given) and set up its category axes."""
    grid = {} if row is None else {"row": row, "col": col}
    for trace in layers.traces:
        fig.add_trace(trace, **grid)
    fig.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=layers.column_categories,
        tickvals=layers.column_ticks[0],
        ticktext=layers.column_ticks[1],
        showgrid=False,
        **grid,
    )
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=layers.row_categories,
        tickvals=layers.row_ticks[0],
        ticktext=layers.row_ticks[1],
        autorange="reversed",
        showgrid=False,
        **grid,
    )


def _kind_text(reduction, mask: np.ndarray) -> np.ndarray:
    text = np.full(mask.shape, "", dtype=object)
    for r, c in zip(*np.nonzero(mask)):
        text[r, c] = _describe_block(reduction, r, c)
    return text


def _describe_block(reduction, r: int, c: int) -> str:
    counts = (int(reduction.nan[r, c]), int(reduction.posinf[r, c]), int(reduction.neginf[r, c]))
    if not reduction.reduced:
        return next(name for name, count in zip(("NaN", "+Inf", "−Inf"), counts) if count)
    return describe_non_finite(*counts)


def _non_finite_marks(reduction, x: list[str], y: list[str], value_name: str, show_legend: bool, keep_empty: bool):
    non_finite = reduction.nan + reduction.posinf + reduction.neginf
    rows, columns = np.nonzero(non_finite)
    if rows.size == 0 and not keep_empty:
        return [], None
    note = None
    if rows.size > MAX_MARKED_CELLS:
        note = (
            f"NaN/±Inf symbols on the first {MAX_MARKED_CELLS} of {rows.size} such cells; "
            "grey cells show the others"
        )
        rows, columns = rows[:MAX_MARKED_CELLS], columns[:MAX_MARKED_CELLS]

    if reduction.reduced:
        groups = {"blocks with NaN/±Inf": np.ones(rows.size, dtype=bool)}
        symbols = {"blocks with NaN/±Inf": "x"}
    else:
        groups = {
            "NaN": reduction.nan[rows, columns] > 0,
            "+Inf": reduction.posinf[rows, columns] > 0,
            "−Inf": reduction.neginf[rows, columns] > 0,
        }
        symbols = NON_FINITE_SYMBOLS

    traces = []
    for name, selected in groups.items():
        if not selected.any() and not keep_empty:
            continue
        hover = []
        for r, c in zip(rows[selected], columns[selected]):
            description = _describe_block(reduction, r, c)
            if reduction.reduced:
                description += f" in this block; mean of the finite values {_format(reduction.values[r, c])}"
            hover.append(f"{y[r]}<br>{x[c]}<br>{value_name}: {description}")
        traces.append(
            go.Scatter(
                x=[x[c] for c in columns[selected]],
                y=[y[r] for r in rows[selected]],
                mode="markers",
                marker={
                    "symbol": symbols[name],
                    "size": 11,
                    "color": "#FFFFFF",
                    "line": {"color": "#000000", "width": 1.5},
                },
                name=name,
                legendgroup=name,
                showlegend=show_legend,
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    return traces, note


def _format(value: float) -> str:
    return "none" if not np.isfinite(value) else f"{value:.7g}"
