"""Trajectories view: each state's path through the layers and across the steps."""

import streamlit as st

from app import charts, state

TEACHING_RECORDING = "tutorial.nsm"


def show_teaching_example() -> None:
    """Open the teaching recording on dimension 0: the plot of dimension 0 of 5 states over 4 layers."""
    st.session_state[state.SOURCE_KIND] = state.SOURCE_BUNDLED
    st.session_state[state.BUNDLED_NAME] = TEACHING_RECORDING
    st.session_state[state.TRAJECTORY_DIM] = 0
    st.session_state[state.STEP] = 0


context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("Trajectories")
st.write("How every state moves through the layers and across the steps; each state keeps its colour.")

options = [state.NORM, *range(recording.state_dim)]
if st.session_state.get(state.TRAJECTORY_DIM) not in options:
    st.session_state[state.TRAJECTORY_DIM] = state.NORM
choice, teaching = st.columns([3, 1], vertical_alignment="bottom")
dim = choice.selectbox(
    "Value to follow", options, key=state.TRAJECTORY_DIM,
    format_func=lambda value: "L2 norm of the state" if value == state.NORM else f"dimension {value}",
)
teaching.button(
    "Teaching example", on_click=show_teaching_example, icon=":material/school:",
    help="Dimension 0 of each of the 5 tutorial states over 4 layers.",
)

over_layers, over_steps = st.columns(2)
over_layers.plotly_chart(charts.layer_trajectories(recording, key, playback.step, dim), key="trajectory_layers")

if recording.num_steps > 1:
    name = "L2 norm" if dim == state.NORM else f"dimension {dim}"
    figure = charts.step_trajectories(
        recording, key, playback.layer, None if dim == state.NORM else dim,
        f"{name} at {context.layer_title()} (activation)",
    )
    over_steps.plotly_chart(figure, key="trajectory_steps")
else:
    over_steps.info("This recording has one step; record with `--steps N` to follow the states across steps.")

st.subheader("Paths through the layers, projected")
components = st.segmented_control("Projection", ["2D", "3D"], key=state.PROJECTION, required=True)
try:
    st.plotly_chart(charts.projection(recording, key, playback.step, 3 if components == "3D" else 2), key="projection")
except ValueError as error:
    st.info(str(error))
