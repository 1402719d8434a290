"""The shared look of every figure: state colours, label escaping, colour ranges, display size.

Every builder in this package draws state s in ``state_color(s)``. Probabilities use the fixed
``PROBABILITY_RANGE`` with a perceptually uniform scale, and states and differences use a
diverging scale centred at 0. Large matrices are shrunk with ``reduce_matrix`` so that the
figure's JSON stays below ``MAX_FIGURE_BYTES``.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

# Qualitative palette of mid-luminance colours: each has a contrast ratio of at least 3:1 both
# against white and against the near-black background of dark themes, so state marks stay
# legible in both. Derived from the D3, Plotly and Carto palettes; grey is left out because
# grey marks NaN and ±Inf.
PALETTE = (
    "#1F77B4",  # blue
    "#D62728",  # red
    "#2CA02C",  # green
    "#9467BD",  # purple
    "#EB663B",  # orange
    "#008695",  # teal
    "#CF1C90",  # magenta
    "#B68100",  # ochre
    "#8C564B",  # brown
    "#6C7C32",  # olive
)

PROBABILITY_RANGE = (0.0, 1.0)
PROBABILITY_SCALE = "Viridis"  # perceptually uniform, readable in grey and by most colour-blind viewers
DIVERGING_SCALE = "RdBu_r"  # red above 0, blue below, white at 0

NON_FINITE_COLOR = "#8C8C8C"  # grey cell behind NaN/±Inf marks; differs from every palette entry
BELOW_THRESHOLD_COLOR = "rgba(140, 140, 140, 0.15)"  # faint on light and dark backgrounds

# Plotly encodes a float32 array as base64, about 5.3 bytes per cell, and a heatmap with a
# threshold and non-finite marks stores up to three such layers plus labels. 40 000 cells keep
# the largest figures near 1 MB of JSON, well under MAX_FIGURE_BYTES.
MAX_FIGURE_CELLS = 40_000
MAX_FIGURE_BYTES = 2_000_000
MAX_TICK_LABELS = 40  # more 14-pixel labels than this overlap on a 730-pixel plot (a 900-pixel figure)
MAX_MARKED_CELLS = 2_000  # NaN/±Inf symbols drawn; the grey cells beneath show every one
MAX_TICK_CHARS = 14  # longer labels are cut on the axis; hover shows them whole

VALUE_FORMAT = ".7~g"  # float32 has about 7 significant digits, and "~" trims trailing zeros

TITLE_FONT_SIZE = 20
FONT_SIZE = 16
TICK_FONT_SIZE = 14
HOVER_FONT_SIZE = 14

_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def state_color(index: int) -> str:
    """Return the colour of state `index`; the palette repeats for S > len(PALETTE)."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"state index {index!r} is invalid; pass a non-negative integer.")
    return PALETTE[int(index) % len(PALETTE)]


def state_swatch(index: int, text: str | None = None) -> str:
    """Return tick text for state `index`: a square in the state's colour, then `text`."""
    label = f"state {index}" if text is None else text
    return f'<span style="color:{state_color(index)}">■</span> {label}'


def escape_label(text: str) -> str:
    """Escape `text` so that Plotly shows it literally in hover, tick and title text.

    Plotly reads a subset of HTML in every text it draws, so "<s>" would start strikethrough
    and "&amp;" would become "&". Control characters become visible escapes such as "\\n",
    and unpaired surrogates become "\\udXXX", because Plotly drops the first and JSON encoders
    reject the second.
    """
    text = str(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    characters = []
    for character in text:
        if character in _CONTROL_ESCAPES:
            characters.append(_CONTROL_ESCAPES[character])
        elif unicodedata.category(character) == "Cc":
            characters.append(f"\\x{ord(character):02x}")
        else:
            characters.append(character)
    return "".join(characters).encode("utf-8", "backslashreplace").decode("utf-8")


def shorten(text: str, max_chars: int = MAX_TICK_CHARS) -> str:
    """Cut plain `text` to max_chars characters, ending with "…" when something was cut."""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def finite_range(*arrays: np.ndarray) -> tuple[float, float] | None:
    """Return (min, max) over the finite values of all arrays, or None if there are none."""
    lows, highs = [], []
    for array in arrays:
        values = np.asarray(array, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            lows.append(finite.min())
            highs.append(finite.max())
    if not lows:
        return None
    return float(min(lows)), float(max(highs))


def symmetric_range(*arrays: np.ndarray) -> tuple[float, float] | None:
    """Return (−m, m) with m the largest finite |value|, (−1, 1) if all are 0, None if none is finite.

    A diverging scale centred at 0 needs a symmetric range. The (−1, 1) fallback gives a
    constant zero matrix a colour bar with ticks instead of a degenerate one.
    """
    bounds = finite_range(*arrays)
    if bounds is None:
        return None
    largest = max(abs(bounds[0]), abs(bounds[1]))
    if largest == 0.0:
        largest = 1.0
    return -largest, largest


def count_kinds(array: np.ndarray) -> tuple[int, int, int]:
    """Return the numbers of NaN, +Inf and −Inf values in `array`."""
    values = np.asarray(array)
    return int(np.isnan(values).sum()), int(np.isposinf(values).sum()), int(np.isneginf(values).sum())


NON_FINITE_SYMBOLS = {"NaN": "x", "+Inf": "triangle-up", "−Inf": "triangle-down"}


def non_finite_name(value: float) -> str:
    """Return "NaN", "+Inf" or "−Inf" for a non-finite `value`."""
    if np.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "−Inf"


def describe_non_finite(nan: int, posinf: int, neginf: int) -> str:
    """Return text such as "2 NaN, 1 +Inf" naming the non-zero counts, or "" if all are 0."""
    parts = [f"{count} {name}" for count, name in ((nan, "NaN"), (posinf, "+Inf"), (neginf, "−Inf")) if count]
    return ", ".join(parts)


# Display reduction ------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockReduction:
    """A matrix [R, C] shrunk to block means [R', C'], with what each block contained.

    `values` holds the mean of each block's finite values (NaN where a block has none), and the
    three count arrays hold how many NaN, +Inf and −Inf values each block contained.
    """

    values: np.ndarray  # [R', C'] float32
    rows_per_block: int
    columns_per_block: int
    nan: np.ndarray  # [R', C'] int
    posinf: np.ndarray  # [R', C'] int
    neginf: np.ndarray  # [R', C'] int

    @property
    def reduced(self) -> bool:
        return self.rows_per_block > 1 or self.columns_per_block > 1


def choose_blocks(rows: int, columns: int, max_cells: int, reduce_first: str | None = None) -> tuple[int, int]:
    """Return (rows_per_block, columns_per_block) that leave at most max_cells blocks.

    Without `reduce_first` the pair that keeps the most cells wins, and among equals the one
    with the most nearly square blocks. With reduce_first="columns" (or "rows") that axis is
    shrunk, down to one block if need be, before the other is touched, so that, for example,
    every state keeps its own row.
    """
    if max_cells < 1:
        raise ValueError(f"max_cells={max_cells} is invalid; pass a positive number of cells.")
    if reduce_first not in (None, "rows", "columns"):
        raise ValueError(f"reduce_first={reduce_first!r} is invalid; use None, 'rows' or 'columns'.")
    if rows * columns <= max_cells:
        return 1, 1
    if reduce_first == "columns":
        column_block = _smallest_block(columns, max_cells // max(rows, 1))
        return _smallest_block(rows, max_cells // _count(columns, column_block)), column_block
    if reduce_first == "rows":
        row_block = _smallest_block(rows, max_cells // max(columns, 1))
        return row_block, _smallest_block(columns, max_cells // _count(rows, row_block))

    best: tuple[int, int] | None = None
    best_key = None
    row_block = 1
    while True:
        # Each candidate row block gives a distinct number of row blocks; the columns get
        # the smallest block that fits in the cells left.
        row_count = _count(rows, row_block)
        column_block = _smallest_block(columns, max_cells // row_count)
        cells = row_count * _count(columns, column_block)
        if cells <= max_cells:
            key = (-cells, max(row_block, column_block))
            if best_key is None or key < best_key:
                best, best_key = (row_block, column_block), key
        if row_count == 1:
            break
        row_block = -(-rows // (row_count - 1))  # smallest block that removes one row block
    return best


def _count(length: int, block: int) -> int:
    return -(-length // block)


def _smallest_block(length: int, max_blocks: int) -> int:
    """Return the smallest block size that splits `length` into at most max_blocks blocks (≥ 1)."""
    if length == 0:
        return 1
    if max_blocks < 1:
        return length
    return max(1, -(-length // max_blocks))


def reduce_blocks(matrix: np.ndarray, rows_per_block: int, columns_per_block: int) -> BlockReduction:
    """Average `matrix` [R, C] over blocks of rows_per_block × columns_per_block cells.

    The last block along an axis may be smaller. Means are over finite values only, and each
    block's NaN, +Inf and −Inf values are counted instead.
    """
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a matrix [R, C], got an array of shape {values.shape}.")
    rows, columns = values.shape
    row_count = -(-rows // rows_per_block)
    column_count = -(-columns // columns_per_block)

    # Pad with NaN to whole blocks; the padding is not counted as NaN below.
    padded = np.full((row_count * rows_per_block, column_count * columns_per_block), np.nan)
    padded[:rows, :columns] = values
    inside = np.zeros(padded.shape, dtype=bool)
    inside[:rows, :columns] = True
    shape = (row_count, rows_per_block, column_count, columns_per_block)

    def per_block(mask: np.ndarray) -> np.ndarray:
        return mask.reshape(shape).sum(axis=(1, 3))

    finite = np.isfinite(padded)
    finite_count = per_block(finite)
    finite_sum = np.where(finite, padded, 0.0).reshape(shape).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(finite_count > 0, finite_sum / np.maximum(finite_count, 1), np.nan)
    return BlockReduction(
        values=means.astype(np.float32),
        rows_per_block=rows_per_block,
        columns_per_block=columns_per_block,
        nan=per_block(np.isnan(padded) & inside),
        posinf=per_block(np.isposinf(padded)),
        neginf=per_block(np.isneginf(padded)),
    )


def reduction_note(rows_per_block: int, columns_per_block: int, row_unit: str, column_unit: str) -> str | None:
    """Return text like "mean over blocks of 4 tokens × 2 states", or None for 1 × 1 blocks."""
    if rows_per_block == 1 and columns_per_block == 1:
        return None
    return (
        f"mean over blocks of {_count_noun(rows_per_block, row_unit)} × "
        f"{_count_noun(columns_per_block, column_unit)}"
    )


def reduce_matrix(
    matrix: np.ndarray,
    max_cells: int = MAX_FIGURE_CELLS,
    *,
    row_unit: str = "rows",
    column_unit: str = "columns",
    reduce_first: str | None = None,
) -> tuple[np.ndarray, str | None]:
    """Shrink `matrix` [R, C] by block means to at most max_cells cells for display.

    Returns (reduced [R', C'] float32, note), where note states the reduction, for example
    "mean over blocks of 4 tokens × 2 states", or is None when the matrix already fits.
    Units are plural nouns ("tokens", "states"). Means are over finite values only.
    """
    values = np.asarray(matrix)
    if values.ndim != 2:
        raise ValueError(f"expected a matrix [R, C], got an array of shape {values.shape}.")
    row_block, column_block = choose_blocks(values.shape[0], values.shape[1], max_cells, reduce_first)
    if row_block == 1 and column_block == 1:
        return values.astype(np.float32), None
    reduction = reduce_blocks(values, row_block, column_block)
    return reduction.values, reduction_note(row_block, column_block, row_unit, column_unit)


def block_bounds(length: int, block: int) -> list[tuple[int, int]]:
    """Return the (first, last) index, both inclusive, of each block along an axis."""
    return [(start, min(start + block, length) - 1) for start in range(0, length, block)]


def _count_noun(count: int, plural: str) -> str:
    singular = plural[:-1] if plural.endswith("s") else plural
    return f"{count} {singular if count == 1 else plural}"


# Layout -----------------------------------------------------------------------------------


def apply_theme(
    fig: go.Figure,
    title: str,
    *,
    note: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    height: int | None = None,
    show_legend: bool | None = None,
) -> go.Figure:
    """Give `fig` the common layout: escaped title, optional note below it, axis names, fonts.

    `title`, `note` and the axis titles are plain text, escaped here. Axis titles apply to the
    first x and y axis. The figure uses Plotly's light template; call ``set_theme(fig, "dark")`` for dark
    slides. Text colours come from the template, so both themes stay legible.
    """
    title_spec: dict = {"text": escape_label(title), "font": {"size": TITLE_FONT_SIZE}, "x": 0.0, "xanchor": "left"}
    if note:
        title_spec["subtitle"] = {"text": escape_label(note), "font": {"size": TICK_FONT_SIZE}}
    fig.update_layout(
        template="plotly_white",
        title=title_spec,
        font={"size": FONT_SIZE},
        hoverlabel={"font": {"size": HOVER_FONT_SIZE}},
        legend={"font": {"size": TICK_FONT_SIZE}},
        margin={"t": 100 if note else 70, "l": 80, "r": 30, "b": 70},
    )
    fig.update_xaxes(title_font={"size": FONT_SIZE}, tickfont={"size": TICK_FONT_SIZE})
    fig.update_yaxes(title_font={"size": FONT_SIZE}, tickfont={"size": TICK_FONT_SIZE})
    if x_title is not None:
        fig.update_layout(xaxis_title_text=escape_label(x_title))
    if y_title is not None:
        fig.update_layout(yaxis_title_text=escape_label(y_title))
    if height is not None:
        fig.update_layout(height=height)
    if show_legend is not None:
        fig.update_layout(showlegend=show_legend)
    return fig


def set_theme(fig: go.Figure, theme: str) -> go.Figure:
    """Switch `fig` to Plotly's "light" (white) or "dark" template in place and return it."""
    templates = {"light": "plotly_white", "dark": "plotly_dark"}
    if theme not in templates:
        raise ValueError(f"theme={theme!r} is invalid; use one of {sorted(templates)}.")
    fig.update_layout(template=templates[theme])
    return fig


def heatmap_height(rows: int, *, per_row: int = 22, minimum: int = 380, maximum: int = 900) -> int:
    """Return a figure height in pixels that gives each of `rows` rows room, within limits."""
    return int(min(maximum, max(minimum, 160 + per_row * rows)))


def colorbar(title: str) -> dict:
    """Return a colour bar spec with a labelled title and readable ticks."""
    return {
        "title": {"text": title, "side": "right", "font": {"size": FONT_SIZE}},
        "tickfont": {"size": TICK_FONT_SIZE},
        "thickness": 18,
    }


def message_figure(message: str, title: str, *, height: int = 320) -> go.Figure:
    """Return an empty figure that shows `message` in its centre, such as "no data: …"."""
    fig = go.Figure()
    fig.add_annotation(
        text=escape_label(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": FONT_SIZE + 2},
    )
    apply_theme(fig, title, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def tick_positions(count: int, max_labels: int = MAX_TICK_LABELS) -> list[int]:
    """Return up to max_labels indices out of `count`, from 0 in steps of 1, 2 or 5 times a power of 10."""
    if count <= max_labels:
        return list(range(count))
    needed = math.ceil(count / max_labels)
    power = 10 ** math.floor(math.log10(needed))
    step = next(factor * power for factor in (1, 2, 5, 10) if factor * power >= needed)
    return list(range(0, count, step))
