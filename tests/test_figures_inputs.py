"""Input figures of the tasks: digit image, recall strip and table, prediction bars."""

from __future__ import annotations

import numpy as np
import pytest

from app.figures.inputs import (
    CORRECT_COLOR,
    WRONG_COLOR,
    digit_image_figure,
    input_figure,
    prediction_figure,
    recall_sequence_figure,
    recall_table,
)

ROW_REGIONS = [[row, row + 1, 0, 8] for row in range(8)]
RECALL_TOKENS = [
    {"role": "pair", "key": 3, "value": 7},
    {"role": "pair", "key": 12, "value": 5},
    {"role": "query", "key": 12, "answer": 5},
    {"role": "query", "key": 3, "answer": 7},
]


def test_digit_image_keeps_pixels_and_scale():
    image = np.arange(64, dtype=np.float32).reshape(8, 8) % 17

    figure = digit_image_figure(image, token_regions=ROW_REGIONS)

    heatmap = figure.data[0]
    np.testing.assert_array_equal(np.asarray(heatmap.z), image)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 16.0)
    assert figure.layout.yaxis.autorange == "reversed"  # row 0 on top, as the model reads it
    assert figure.layout.yaxis.title.text == "row (one token each)"
    assert heatmap.hovertext[2][5] == "row 2, col 5<br>value 4 of 16"


def test_digit_image_outlines_highlighted_token():
    figure = digit_image_figure(np.zeros((8, 8)), token_regions=ROW_REGIONS, highlight_token=3)

    (shape,) = figure.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (-0.5, 7.5, 2.5, 3.5)


@pytest.mark.parametrize("image", [np.zeros(8), np.zeros((0, 8)), np.zeros((2, 2, 2))])
def test_digit_image_rejects_bad_shape(image):
    with pytest.raises(ValueError, match="non-empty 2-D"):
        digit_image_figure(image)


def test_digit_image_rejects_unknown_highlight():
    with pytest.raises(ValueError, match="highlight_token=8 is outside the 8 token regions"):
        digit_image_figure(np.zeros((8, 8)), token_regions=ROW_REGIONS, highlight_token=8)


def test_recall_table_marks_predictions():
    table = recall_table(RECALL_TOKENS, predictions=[5, 1])

    assert table["token"].tolist() == ["3:7", "12:5", "?12", "?3"]
    assert table["role"].tolist() == ["pair", "pair", "query", "query"]
    assert table["answer"].tolist()[2:] == [5, 7]
    assert table["prediction"].tolist()[2:] == [5, 1]
    assert table["correct"].tolist() == [None, None, True, False]


def test_recall_table_names_split_tokens():
    tokens = [{"role": "key", "key": 4}, {"role": "value", "value": 9}, {"role": "query", "key": 4, "answer": 9}]

    assert recall_table(tokens)["token"].tolist() == ["k4", "v9", "?4"]


def test_recall_strip_colours_queries_by_correctness():
    figure = recall_sequence_figure(RECALL_TOKENS, predictions=[5, 1])

    heatmap = figure.data[0]
    assert list(heatmap.text[0]) == ["3:7", "12:5", "?12<br>→ 5", "?3<br>→ 1"]
    scale = [color for _, color in heatmap.colorscale]
    # Two stops per cell: cell i spans stops 2i and 2i + 1.
    assert scale[4] == CORRECT_COLOR
    assert scale[6] == WRONG_COLOR
    assert "predicted 1 (wrong)" in heatmap.hovertext[0][3]


def test_recall_strip_without_predictions():
    figure = recall_sequence_figure(RECALL_TOKENS)

    assert list(figure.data[0].text[0]) == ["3:7", "12:5", "?12", "?3"]


def test_recall_strip_of_one_token():
    figure = recall_sequence_figure([{"role": "pair", "key": 0, "value": 1}])

    assert list(figure.data[0].text[0]) == ["0:1"]


def test_recall_strip_of_no_tokens_says_empty():
    figure = recall_sequence_figure([])

    assert figure.layout.annotations[0].text == "empty sequence"


def test_recall_rejects_prediction_count_mismatch():
    with pytest.raises(ValueError, match="3 predictions for 2 queries"):
        recall_sequence_figure(RECALL_TOKENS, predictions=[1, 2, 3])


def test_recall_rejects_unknown_role():
    with pytest.raises(ValueError, match="token 0 has role 'noise'"):
        recall_table([{"role": "noise"}])


def test_prediction_bars_mark_wrong_top_class():
    figure = prediction_figure([0.1, 0.7, 0.2], ["0", "1", "2"], label=2)

    bars = figure.data[0]
    assert list(bars.y) == [0.1, 0.7, 0.2]
    assert bars.marker.color[1] == WRONG_COLOR
    assert figure.layout.annotations[0].x == "2"


def test_prediction_bars_reject_length_mismatch():
    with pytest.raises(ValueError, match=r"shape \(2,\) but there are 3 class names"):
        prediction_figure([0.5, 0.5], ["a", "b", "c"])


def test_input_figure_dispatches_on_kind():
    digit = {"input": {"kind": "digit_image", "image": np.zeros((8, 8)).tolist(), "token_regions": ROW_REGIONS},
             "label": 4}
    recall = {"input": {"kind": "recall_sequence", "tokens": RECALL_TOKENS}, "prediction": [5, 7]}

    assert input_figure(digit).layout.title.text == "Input image (label 4)"
    assert list(input_figure(recall).data[0].text[0])[2] == "?12<br>→ 5"


@pytest.mark.parametrize("extra", [{}, {"input": {"kind": "audio"}}, {"input": "pixels"}])
def test_input_figure_rejects_missing_input(extra):
    with pytest.raises(ValueError, match="no drawable input"):
        input_figure(extra)
