"""Dashboard faults (AppTest): damaged files, unsafe names, awkward values and shapes, bad live input.

Every case checks that no traceback is shown and that the message names what is wrong.
"""

from __future__ import annotations

import json
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import sources, state
from app.text import markdown_literal
from nsm_core.cli.main import main
from nsm_core.recording import RecordingWriter
from nsm_core.recording.schema import SCHEMA_VERSION
from recording_files import RecordingParts, record_small

ENTRY = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
TIMEOUT_S = 120  # the first run imports torch and plotly
PAGES = ("views/states.py", "views/trajectories.py", "views/routing.py", "views/gates.py", "views/summary.py")


def start(monkeypatch, *app_args: str) -> AppTest:
    monkeypatch.setattr(sys, "argv", [str(ENTRY), *app_args])
    monkeypatch.delenv(sources.RECORDINGS_DIR_ENV, raising=False)
    return AppTest.from_file(str(ENTRY), default_timeout=TIMEOUT_S).run()


def open_folder(monkeypatch, folder: Path, name: str | None = None) -> AppTest:
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(folder))
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()
    if name is not None:
        app.selectbox(key=state.FOLDER_NAME).set_value(name).run()
    return app


def chart(app: AppTest, key: str) -> dict:
    charts = [element for element in app.get("plotly_chart") if element.key == key]
    assert charts, f"no chart {key!r}; drawn: {[element.key for element in app.get('plotly_chart')]}"
    return json.loads(charts[0].proto.spec)


def annotations(figure: dict) -> list[str]:
    return [annotation.get("text", "") for annotation in figure["layout"].get("annotations", [])]


def assert_no_failure(app: AppTest) -> None:
    assert not app.exception, [element.value for element in app.exception]
    assert not app.error, [element.value for element in app.error]


# Damaged uploads --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_blob(tmp_path_factory) -> bytes:
    return record_small(tmp_path_factory.mktemp("small") / "small.nsm").read_bytes()


def _edited(blob: bytes, edit) -> bytes:
    parts = RecordingParts.split(blob).copy()
    edit(parts)
    return parts.join()


def _huge_header(parts: RecordingParts) -> None:
    parts.manifest["dims"].update({"S": 10**6, "D": 10**6})
    parts.header["states"]["shape"] = [2, 2, 10**6, 10**6]  # 4·10^12 elements


DAMAGED = {
    "8 random bytes": (lambda blob: random.Random(0).randbytes(8), "is not a recording or is cut off"),
    "empty": (lambda blob: b"", "is 0 bytes long, too short to be a recording"),
    "half": (lambda blob: blob[: len(blob) // 2], "is cut off or damaged: tensor 'states'"),
    "huge header": (lambda blob: _edited(blob, _huge_header), "dims['S']=1000000 (states) is more than the file's"),
    "newer schema": (
        lambda blob: _edited(blob, lambda parts: parts.manifest.update(schema_version=SCHEMA_VERSION + 1)),
        f"uses recording schema version {SCHEMA_VERSION + 1}",
    ),
    "missing field": (
        lambda blob: _edited(blob, lambda parts: parts.manifest.pop("dims")), "the manifest lacks the field 'dims'"
    ),
    "wrong type": (
        lambda blob: _edited(blob, lambda parts: parts.manifest.update(step_labels=3)),
        "manifest field 'step_labels' is int 3, expected list",
    ),
    "shape mismatch": (
        lambda blob: _edited(blob, lambda parts: parts.manifest["dims"].update(S=5)),
        "tensor 'initial_states' has shape [2, 4, 8], but the manifest's dims give [P=2, S=5, D=8]",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_upload_named(monkeypatch, small_blob, case):
    make, fragment = DAMAGED[case]
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()

    app.file_uploader(key=state.UPLOAD).upload("damaged.nsm", make(small_blob)).run()

    assert not app.exception
    message = app.sidebar.error[0].value
    assert message.startswith("damaged.nsm")
    assert fragment in message
    assert app.main.error[0].value.startswith("The recording could not be opened. damaged.nsm")
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_BUNDLED).run()
    assert_no_failure(app)


class CreatesMarker:
    """Unpickling this object creates the file `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_upload_never_unpickled(monkeypatch, tmp_path):
    marker = tmp_path / "unpickled.marker"
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()

    app.file_uploader(key=state.UPLOAD).upload("model.nsm", pickle.dumps(CreatesMarker(marker))).run()

    assert not app.exception
    assert "model.nsm is not a recording or is cut off" in app.sidebar.error[0].value
    assert not marker.exists()


def test_upload_hint_names_limit(monkeypatch):
    app = start(monkeypatch)

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_UPLOAD).run()

    assert_no_failure(app)
    hint = app.sidebar.info[0].value
    assert f"Files over {sources.upload_limit_mb()} MB are rejected" in hint
    assert sources.RECORDINGS_DIR_FLAG in hint


# Server folder ----------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path, small_blob) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "inside.nsm").write_bytes(small_blob)
    (tmp_path / "secret.nsm").write_bytes(small_blob)
    (root / "link.nsm").symlink_to(tmp_path / "secret.nsm")
    return root


def test_folder_symlink_outside_not_listed(monkeypatch, folder):
    app = open_folder(monkeypatch, folder)

    assert_no_failure(app)
    assert app.selectbox(key=state.FOLDER_NAME).options == ["inside.nsm"]


@pytest.mark.parametrize("name", ["../secret.nsm", "link.nsm", "/etc/passwd.nsm"])
def test_folder_unlisted_name_never_opened(monkeypatch, folder, name):
    app = start(monkeypatch, sources.RECORDINGS_DIR_FLAG, str(folder))
    opened = []
    monkeypatch.setattr(sources, "resolve_in_folder", lambda root, chosen: opened.append(chosen) or root / "inside.nsm")
    app.session_state[state.FOLDER_NAME] = name

    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_FOLDER).run()

    assert_no_failure(app)
    assert opened == ["inside.nsm"]
    assert app.selectbox(key=state.FOLDER_NAME).value == "inside.nsm"


# Values -----------------------------------------------------------------------------------------


def write_routing(path: Path, routing: np.ndarray, labels: list[str] | None = None) -> None:
    """Write a one-step, one-layer recording with zero states and the given routing [H, T, S]."""
    heads, tokens, num_states = routing.shape
    dims = {"P": 1, "L": 1, "S": num_states, "D": 2, "T": tokens, "H": heads}
    manifest = {
        "token_labels": [labels or [f"t{t}" for t in range(tokens)]], "step_labels": ["step 0"], "gate_names": [],
        "model": {}, "versions": {}, "created": "", "extra": {},
    }
    states = np.zeros((num_states, 2), dtype=np.float32)
    with RecordingWriter(path, dims, ["initial_states", "states", "routing"], manifest) as writer:
        writer.write_step(0, {"initial_states": states, "states": states[None], "routing": routing[None]})


def test_non_finite_routing_named_and_counted(monkeypatch, tmp_path):
    routing = np.full((1, 3, 4), 0.25, dtype=np.float32)  # [H, T, S]
    routing[0, 1] = np.nan  # a token with no state to route to
    routing[0, 2, 0] = np.inf
    write_routing(tmp_path / "nan.nsm", routing)
    app = open_folder(monkeypatch, tmp_path)

    app.switch_page("views/routing.py").run()
    assert_no_failure(app)
    marks = chart(app, "routing_heatmap")["data"][0]
    assert marks["text"] == [["", "", "", ""], ["NaN"] * 4, ["+Inf", "", "", ""]]
    assert (marks["zmin"], marks["zmax"]) == (0.0, 1.0)

    app.switch_page("views/summary.py").run()
    assert_no_failure(app)
    warnings = [warning.value for warning in app.main.warning]
    assert any(warning.startswith("routing has 4 NaN, 1 +Inf and 0 -Inf values") for warning in warnings), warnings


def test_constant_routing_keeps_unit_scale(monkeypatch, tmp_path):
    write_routing(tmp_path / "uniform.nsm", np.full((1, 5, 8), 0.125, dtype=np.float32))
    app = open_folder(monkeypatch, tmp_path)

    app.switch_page("views/routing.py").run()

    assert_no_failure(app)
    heatmap = chart(app, "routing_heatmap")["data"][0]
    assert (heatmap["zmin"], heatmap["zmax"]) == (0.0, 1.0)


def test_all_nan_routing_says_no_data(monkeypatch, tmp_path):
    write_routing(tmp_path / "all-nan.nsm", np.full((2, 3, 4), np.nan, dtype=np.float32))
    app = open_folder(monkeypatch, tmp_path)

    app.switch_page("views/routing.py").run()

    assert_no_failure(app)
    assert annotations(chart(app, "routing_heatmap")) == [
        "no data: all 12 values of the routing weight matrix are NaN or ±Inf (12 NaN)."
    ]


# Tiny shapes ------------------------------------------------------------------------------------


TINY = {
    "0 tokens": ["--input", ""],
    "1 token": ["--input", "a"],
    "1 state": ["--states", "1"],
    "1 layer": ["--layers", "1"],
    "1 head": ["--heads", "1"],
}


@pytest.mark.parametrize("case", list(TINY))
def test_tiny_recording_every_view(monkeypatch, tmp_path, case):
    assert main(["record", *TINY[case], "--out", str(tmp_path / "tiny.nsm")]) == 0
    app = open_folder(monkeypatch, tmp_path)

    for layer in (0, 1):
        app.slider(key=state.LAYER).set_value(layer).run()
        for page in PAGES:
            app.switch_page(page).run()

            assert_no_failure(app)
            assert app.title[0].value, (page, layer)
    if case == "0 tokens":
        app.switch_page("views/routing.py").run()
        assert annotations(chart(app, "routing_heatmap")) == ["no tokens in this step (T = 0), so there is nothing to route."]


def test_projection_with_two_points_says_why(monkeypatch, tmp_path):
    flags = ["--input", "a", "--states", "1", "--layers", "1", "--heads", "1", "--state-dim", "4", "--token-dim", "4"]
    assert main(["record", *flags, "--out", str(tmp_path / "one.nsm")]) == 0
    app = open_folder(monkeypatch, tmp_path)
    app.switch_page("views/trajectories.py").run()

    app.segmented_control(key=state.PROJECTION).set_value("3D").run()

    assert_no_failure(app)
    assert "a 3-component projection needs at least 3 points, got 2" in app.main.info[-1].value


# Labels -----------------------------------------------------------------------------------------


BYTE_FRAGMENTS = [bytes([byte]).decode("utf-8", "surrogateescape") for byte in "é".encode()]
LABELS = ["<s>", "</s>", "a<b", "é", "😀", "*x*", "$y$", "`z`", *BYTE_FRAGMENTS]


def test_token_labels_shown_literally(monkeypatch, tmp_path):
    write_routing(tmp_path / "labels.nsm", np.full((1, len(LABELS), 2), 0.5, dtype=np.float32), labels=LABELS)
    app = open_folder(monkeypatch, tmp_path)
    app.switch_page("views/routing.py").run()

    captions = {}
    for token in range(len(LABELS)):
        app.slider(key=state.TOKEN).set_value(token).run()
        assert_no_failure(app)
        captions[token] = app.sidebar.caption[-1].value

    # Markdown source with the characters that start Markdown or LaTeX escaped, so it renders as the label.
    assert captions[0] == r"Token 0: '\<s\>'"
    assert captions[5] == r"Token 5: '\*x\*'"
    assert captions[6] == r"Token 6: '\$y\$'"
    assert captions[7] == r"Token 7: '\`z\`'"
    assert captions[3] == r"Token 3: 'é'"
    assert captions[4] == r"Token 4: '😀'"
    assert captions[8] == r"Token 8: '\\xc3'"  # the stored label is the 4 characters \xc3
    ticks = chart(app, "routing_heatmap")["data"][0]["y"]
    assert ticks[:3] == ["token 0: &lt;s&gt;", "token 1: &lt;/s&gt;", "token 2: a&lt;b"]


def test_markdown_literal_escapes_punctuation():
    assert markdown_literal("*x* $y$ <s> a_b") == r"\*x\* \$y\$ \<s\> a\_b"
    assert markdown_literal("\x00\n") == r"\\x00\\n"
    assert markdown_literal("é😀") == "é😀"


# Switching between recordings of different shapes ------------------------------------------------


def test_switch_shape_clamps_sliders(monkeypatch, tmp_path):
    record_small(tmp_path / "a-large.nsm", text="abcdefghi", steps=1, num_states=16, num_heads=4, state_dim=16)
    record_small(tmp_path / "b-small.nsm", text="abcdef", steps=1, num_states=8, num_heads=2)
    app = open_folder(monkeypatch, tmp_path, "a-large.nsm")
    app.switch_page("views/trajectories.py").run()
    app.slider(key=state.TOKEN).set_value(8).run()
    app.select_slider(key=state.HEAD).set_value(3).run()
    app.selectbox(key=state.TRAJECTORY_DIM).set_value(15).run()
    assert_no_failure(app)

    app.selectbox(key=state.FOLDER_NAME).set_value("b-small.nsm").run()

    assert_no_failure(app)
    assert app.slider(key=state.TOKEN).value == 5
    assert app.select_slider(key=state.HEAD).value == state.MEAN_OVER_HEADS
    assert app.selectbox(key=state.TRAJECTORY_DIM).value == state.NORM
    app.switch_page("views/routing.py").run()
    assert_no_failure(app)


# Live source ------------------------------------------------------------------------------------


@pytest.fixture
def live(monkeypatch) -> AppTest:
    app = start(monkeypatch)
    app.radio(key=state.SOURCE_KIND).set_value(state.SOURCE_LIVE).run()
    app.slider(key="live_states").set_value(2).run()
    app.select_slider(key="live_state_dim").set_value(8).run()
    return app


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the input text is empty; type at least one character."),
        ("x" * (sources.MAX_LIVE_TOKENS + 1), f"more than the live limit of {sources.MAX_LIVE_TOKENS}"),
        ("é" * (sources.MAX_LIVE_TOKENS // 2 + 1), f"is {sources.MAX_LIVE_TOKENS + 2} UTF-8 bytes (tokens)"),
    ],
    ids=["empty", "too long", "too many bytes"],
)
def test_live_bad_text_message(live, text, fragment):
    live.text_area(key="live_text").input(text).run()

    assert not live.exception
    assert fragment in live.sidebar.error[0].value
    assert "could not be opened" in live.main.error[0].value


def test_live_control_characters_shown(live):
    live.text_area(key="live_text").input("\x00\x1b[1m\n").run()

    assert_no_failure(live)
    assert live.sidebar.caption[-1].value == r"Token 0: '\\x00'"
    live.slider(key=state.TOKEN).set_value(1).run()
    assert live.sidebar.caption[-1].value == r"Token 1: '\\x1b'"


@pytest.mark.parametrize(
    ("key", "value"),
    [("live_states", 1), ("live_temperature", 0.05), ("live_temperature", 5.0), ("live_prune", 1.0),
     ("live_top_k", 2), ("live_layers", 1), ("live_steps", 1)],
)
def test_live_extreme_slider_renders(live, key, value):
    live.slider(key=key).set_value(value).run()

    for page in PAGES:
        live.switch_page(page).run()
        assert_no_failure(live)
        assert live.title[0].value


# The real file uploader, in headless Chromium ----------------------------------------------------

ALERT = '[data-testid="stSidebar"] [data-testid="stAlert"]'


@pytest.mark.browser
@pytest.mark.slow
def test_browser_upload_over_limit_and_damaged(monkeypatch, tmp_path, small_blob):
    from app.screenshot import CHROMIUM, free_port, launch_browser, running_dashboard, wait_for_view

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent; install Debian's chromium package (scripts/test.sh does under CI).")
    monkeypatch.setenv("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", "1")  # MB, read by `streamlit run`
    big, cut = tmp_path / "big.nsm", tmp_path / "cut.nsm"
    big.write_bytes(b"\0" * (sources.BYTES_PER_MB + 1))
    cut.write_bytes(small_blob[: len(small_blob) // 2])

    with running_dashboard(free_port()) as url, launch_browser(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(url)
        wait_for_view(page)
        page.get_by_text(state.SOURCE_UPLOAD, exact=True).click()
        page.wait_for_selector(f"{ALERT} >> text=Files over 1 MB are rejected")

        page.locator('input[type="file"]').set_input_files(big)
        page.wait_for_selector('[data-testid="stSidebar"] >> text=File must be 1.0MB or smaller')
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        page.locator('input[type="file"]').set_input_files(cut)
        page.wait_for_selector(f"{ALERT} >> text=cut.nsm is cut off or damaged")
        tracebacks = page.locator('[data-testid="stException"]').count()

    assert "Files over 1 MB are rejected" in sidebar
    assert sources.RECORDINGS_DIR_FLAG in sidebar
    assert tracebacks == 0
