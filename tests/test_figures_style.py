"""Shared figure style: state colours, label escaping, colour ranges, display reduction, layout."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures.style import (
    PALETTE,
    TICK_FONT_SIZE,
    apply_theme,
    block_bounds,
    choose_blocks,
    escape_label,
    finite_range,
    message_figure,
    reduce_blocks,
    reduce_matrix,
    set_theme,
    state_color,
    state_swatch,
    symmetric_range,
    tick_positions,
)

LIGHT_BACKGROUND = "#FFFFFF"
DARK_BACKGROUNDS = ("#0E1117", "#111111")  # Streamlit's dark theme, Plotly's plotly_dark


def _relative_luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(first: str, second: str) -> float:
    high, low = sorted((_relative_luminance(first), _relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_state_color_cycles_through_palette():
    assert [state_color(s) for s in range(len(PALETTE))] == list(PALETTE)
    assert state_color(len(PALETTE)) == state_color(0)
    assert state_color(np.int64(3)) == PALETTE[3]
    assert len(set(PALETTE)) == len(PALETTE)


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, None])
def test_state_color_rejects_invalid_index(bad):
    with pytest.raises(ValueError, match="state index"):
        state_color(bad)


@pytest.mark.parametrize("color", PALETTE)
def test_palette_legible_on_light_and_dark(color):
    # WCAG's minimum contrast for graphical objects is 3:1.
    assert _contrast(color, LIGHT_BACKGROUND) >= 3.0
    for background in DARK_BACKGROUNDS:
        assert _contrast(color, background) >= 3.0


def test_state_swatch_uses_state_color():
    assert state_swatch(11) == f'<span style="color:{PALETTE[1]}">■</span> state 11'
    assert state_swatch(2, "2") == f'<span style="color:{PALETTE[2]}">■</span> 2'


@pytest.mark.parametrize(
    ("label", "escaped"),
    [
        ("<s>", "&lt;s&gt;"),
        ("</s>", "&lt;/s&gt;"),
        ("a<b", "a&lt;b"),
        ("<br>", "&lt;br&gt;"),
        ("&", "&amp;"),
        ("&amp;", "&amp;amp;"),
        ("é", "é"),
        ("🙂", "🙂"),
        ("é(1/2)", "é(1/2)"),
        ("\n", "\\n"),
        ("\t", "\\t"),
        ("\x07", "\\x07"),
        ("%{z}", "%{z}"),
        ("", ""),
    ],
)
def test_escape_label_shows_text_literally(label, escaped):
    assert escape_label(label) == escaped


def test_escape_label_makes_lone_surrogate_encodable():
    escaped = escape_label("a\ud83d")
    assert escaped == "a\\ud83d"
    json.dumps(escaped).encode("utf-8")


def test_finite_range_ignores_nan_and_inf():
    values = np.array([[np.nan, -2.0], [np.inf, 3.5], [-np.inf, 0.0]], dtype=np.float32)
    assert finite_range(values) == (-2.0, 3.5)


def test_finite_range_spans_several_arrays():
    assert finite_range(np.array([1.0, 2.0]), np.array([-5.0, np.nan]), np.array([])) == (-5.0, 2.0)


def test_finite_range_none_without_finite_values():
    assert finite_range(np.array([np.nan, np.inf])) is None
    assert finite_range(np.array([])) is None
    assert finite_range() is None


def test_symmetric_range_centres_on_zero():
    assert symmetric_range(np.array([-1.0, 4.0, np.nan])) == (-4.0, 4.0)
    assert symmetric_range(np.zeros((3, 3))) == (-1.0, 1.0)  # constant 0 keeps a usable colour bar
    assert symmetric_range(np.full(4, 2.5)) == (-2.5, 2.5)
    assert symmetric_range(np.array([np.nan])) is None


def test_reduce_matrix_block_means():
    matrix = np.arange(16, dtype=np.float32).reshape(4, 4)
    reduced, note = reduce_matrix(matrix, max_cells=4, row_unit="tokens", column_unit="states")
    # Block (0, 0) contains 0, 1, 4, 5 → 2.5; (0, 1) contains 2, 3, 6, 7 → 4.5;
    # (1, 0) contains 8, 9, 12, 13 → 10.5; (1, 1) contains 10, 11, 14, 15 → 12.5.
    np.testing.assert_array_equal(reduced, [[2.5, 4.5], [10.5, 12.5]])
    assert reduced.dtype == np.float32
    assert note == "mean over blocks of 2 tokens × 2 states"


def test_reduce_matrix_last_block_smaller():
    reduced, note = reduce_matrix(np.arange(5, dtype=np.float32)[:, None], max_cells=3, row_unit="tokens")
    # Blocks of 2 rows: [0, 1] → 0.5, [2, 3] → 2.5, and the last block [4] → 4.
    np.testing.assert_array_equal(reduced[:, 0], [0.5, 2.5, 4.0])
    assert note == "mean over blocks of 2 tokens × 1 column"


def test_reduce_matrix_fitting_matrix_unchanged():
    matrix = np.ones((3, 4))
    reduced, note = reduce_matrix(matrix, max_cells=12)
    np.testing.assert_array_equal(reduced, matrix)
    assert note is None


def test_reduce_matrix_rejects_non_matrix():
    with pytest.raises(ValueError, match=r"\[R, C\]"):
        reduce_matrix(np.ones(5), max_cells=2)


def test_reduce_blocks_counts_non_finite():
    matrix = np.array([[1.0, np.nan, 3.0, np.inf], [5.0, -np.inf, np.nan, np.nan]])
    reduction = reduce_blocks(matrix, 2, 2)
    # Left block: 1, NaN, 5, −Inf → mean of finite (1 + 5) / 2 = 3; right block: 3, +Inf, NaN, NaN → 3.
    np.testing.assert_array_equal(reduction.values, [[3.0, 3.0]])
    np.testing.assert_array_equal(reduction.nan, [[1, 2]])
    np.testing.assert_array_equal(reduction.posinf, [[0, 1]])
    np.testing.assert_array_equal(reduction.neginf, [[1, 0]])


def test_reduce_blocks_padding_not_counted_as_nan():
    reduction = reduce_blocks(np.ones((3, 3)), 2, 2)
    assert reduction.nan.sum() == 0
    np.testing.assert_array_equal(reduction.values, np.ones((2, 2)))


def test_reduce_blocks_all_nan_block_gives_nan():
    reduction = reduce_blocks(np.array([[np.nan, np.nan], [1.0, 1.0]]), 1, 2)
    assert np.isnan(reduction.values[0, 0])
    assert reduction.values[1, 0] == 1.0


@pytest.mark.parametrize(
    ("shape", "max_cells", "reduce_first", "blocks"),
    [
        # (1, 4), (2, 2) and (4, 1) all keep 32768 cells; the square blocks win.
        ((512, 256), 40_000, None, (2, 2)),
        ((512, 256), 40_000, "columns", (1, 4)),  # 512 × 64 = 32768 cells, every row kept
        ((512, 256), 40_000, "rows", (4, 1)),  # 128 × 256 = 32768 cells, every column kept
        # Row blocks of 3 leave 3 rows and column blocks of 3 leave 2 columns: 6 cells. Blocks
        # (4, 2) also leave 2 × 3 = 6 cells but are less square.
        ((7, 5), 6, None, (3, 3)),
        ((256, 256), 40_000, "columns", (1, 2)),  # 256 × 128 = 32768
        ((4, 8), 8, "columns", (1, 4)),  # 4 × 2
        ((10, 10), 1, None, (10, 10)),
        ((3, 3), 9, None, (1, 1)),
        ((100_000, 2), 40_000, "columns", (3, 2)),  # columns exhausted first, then rows
    ],
)
def test_choose_blocks_fits_max_cells(shape, max_cells, reduce_first, blocks):
    assert choose_blocks(*shape, max_cells, reduce_first) == blocks
    rows, columns = shape
    assert -(-rows // blocks[0]) * -(-columns // blocks[1]) <= max_cells


def test_choose_blocks_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="max_cells"):
        choose_blocks(4, 4, 0)
    with pytest.raises(ValueError, match="reduce_first"):
        choose_blocks(4, 4, 4, "diagonal")


def test_block_bounds_inclusive():
    assert block_bounds(5, 2) == [(0, 1), (2, 3), (4, 4)]
    assert block_bounds(0, 3) == []


@pytest.mark.parametrize(
    ("count", "max_labels", "step"),
    [(10, 40, 1), (41, 40, 2), (256, 40, 10), (512, 40, 20), (2000, 40, 50), (101, 10, 20)],
)
def test_tick_positions_round_steps(count, max_labels, step):
    positions = tick_positions(count, max_labels)
    assert positions == list(range(0, count, step))
    assert len(positions) <= max_labels


def test_apply_theme_sets_readable_fonts_and_escaped_title():
    fig = apply_theme(go.Figure(), "Routing of <s>", note="mean over blocks", x_title="state", y_title="token")
    assert fig.layout.title.text == "Routing of &lt;s&gt;"
    assert fig.layout.title.subtitle.text == "mean over blocks"
    assert fig.layout.xaxis.title.text == "state"
    assert fig.layout.yaxis.title.text == "token"
    assert fig.layout.xaxis.tickfont.size >= 14
    assert fig.layout.yaxis.title.font.size >= 14
    assert fig.layout.hoverlabel.font.size >= 14
    assert TICK_FONT_SIZE >= 14


def test_set_theme_switches_template():
    fig = set_theme(go.Figure(), "dark")
    assert fig.layout.template.layout.paper_bgcolor == "rgb(17,17,17)"
    with pytest.raises(ValueError, match="theme='sepia'"):
        set_theme(fig, "sepia")


def test_message_figure_shows_message():
    fig = message_figure("no data: all 4 values are NaN", "Routing <1>")
    assert fig.layout.annotations[0].text == "no data: all 4 values are NaN"
    assert fig.layout.title.text == "Routing &lt;1&gt;"
    assert fig.layout.xaxis.visible is False
    assert len(fig.data) == 0
