"""NSM Inspector dashboard: play recordings of Neural State Machines back, layer by layer.

Run with `streamlit run app/streamlit_app.py`; add `-- --recordings-dir DIR` (or set
NSM_RECORDINGS_DIR) to list the recordings of a server folder in the sidebar.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from app import controls, sources, state
from app.text import markdown_literal

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="NSM Inspector", page_icon=":material/hub:", layout="wide")
state.init_state()

page = st.navigation(
    [
        st.Page(VIEWS / "states.py", title="States", icon=":material/grid_on:", default=True),
        st.Page(VIEWS / "trajectories.py", title="Trajectories", icon=":material/timeline:"),
        st.Page(VIEWS / "routing.py", title="Routing", icon=":material/alt_route:"),
        st.Page(VIEWS / "gates.py", title="Gates", icon=":material/tune:"),
        st.Page(VIEWS / "summary.py", title="Summary", icon=":material/summarize:"),
    ],
    position="top",
)

st.session_state[state.VIEW_CONTEXT] = None
with st.sidebar:
    st.title("NSM Inspector")
    folder, unknown_args = sources.parse_app_args(sys.argv[1:])
    if unknown_args:
        st.warning(f"Ignored unknown arguments {unknown_args}; the dashboard takes {sources.RECORDINGS_DIR_FLAG} DIR.")
    loaded = controls.source_picker(folder)
    if loaded is not None:
        st.caption(f"**{markdown_literal(loaded.name)}**: {state.describe_shape(loaded.recording)}")
        st.divider()
        playback = controls.playback_controls(loaded.recording)
        st.session_state[state.VIEW_CONTEXT] = state.ViewContext(loaded, playback)

page.run()
