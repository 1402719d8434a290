"""Gates view: the gated update's activations per state and layer, saturated gates marked."""

import streamlit as st

from app import frames, state
from app.figures.gates import gate_small_multiples

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("Gates")
st.write(
    "Mean activation of each gate channel, per state (rows) and layer (columns), for the chosen step; "
    "a gate near 0 or 1 is saturated and no longer mixes old and new content."
)
gates = frames.gates_by_layer(recording, key, playback.step)  # [L, S, G]
if gates is None:
    st.info("This recording has no gate activations: its model records states only.")
    st.stop()

margin, _ = st.columns([1, 2])
saturation = margin.slider(
    "Saturation margin", 0.0, 0.25, step=0.01, key=state.SATURATION,
    help="A gate below this margin or above 1 minus it is marked as saturated.",
)
st.plotly_chart(gate_small_multiples(gates, recording.gate_names, saturation=saturation), key="gates")
