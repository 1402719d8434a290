"""Summary view: routing entropy, load, dead and near-duplicate states, collapse and drift."""

import streamlit as st

from app import charts, frames, state
from app.figures.summary import drift_figure, entropy_figure, load_figure
from nsm_core.analysis import (
    DUPLICATE_COSINE,
    FLAG_NAMES,
    near_duplicate_states,
    routing_collapse,
    routing_entropy,
    state_drift,
    state_load,
)

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("Summary")
st.write(
    "Health checks of the routing and the states: how spread each token's routing is, how much "
    "each state receives, and which states are dead, near duplicates, collapsed onto or drifting."
)

table = frames.summary_table(recording, key)
counts = {name: int(table["flags"].str.contains(name, regex=False).sum()) for name in FLAG_NAMES}
for column, name in zip(st.columns(len(FLAG_NAMES)), FLAG_NAMES):
    column.metric(f"{name} (state × frame)", counts[name])
# The non-finite flag counts states only; NaN and ±Inf in routing and other fields are counted here.
for warning in frames.non_finite_warnings(recording, key):
    st.warning(warning, icon=":material/warning:")

flag = st.segmented_control("Timeline shows", [state.ALL_FLAGS, *FLAG_NAMES], key=state.TIMELINE_FLAG, required=True)
timeline = charts.playback_timeline(
    recording, key, None if flag == state.ALL_FLAGS else flag, playback.step, playback.layer
)
st.plotly_chart(timeline, key="timeline")

st.subheader(f"Routing at {context.frame_title()}, {context.head_title()}")
routing = frames.head_matrix(recording, key, "routing", playback.step, playback.layer, playback.head)  # [T, S]
if routing is None:
    st.info("Routing starts at layer 1, and tutorial recordings have none; move the layer slider to see it.")
else:
    per_head = frames.frame_field(recording, key, "routing", playback.step, playback.layer)  # [H, T, S]
    weights = per_head if playback.head is None else routing
    entropy, load = st.columns(2)
    entropy.plotly_chart(
        entropy_figure(routing_entropy(weights), recording.token_labels(playback.step), num_states=recording.num_states),
        key="entropy",
    )
    load.plotly_chart(load_figure(state_load(routing), num_tokens=routing.shape[0]), key="load")
    collapsed, top_state, share = routing_collapse(routing)
    if top_state is None:
        collapse = "cannot be judged without tokens or with NaN weights"
    else:
        collapse = f"{'yes' if collapsed else 'no'}; the largest state, {top_state}, takes {share:.1%} of the mass"
    duplicates = near_duplicate_states(frames.states_by_layer(recording, key, playback.step)[playback.layer])
    pairs = ", ".join(f"{i} and {j} ({cosine:.3f})" for i, j, cosine in duplicates) or "none"
    st.markdown(f"**Routing collapse:** {collapse}.  \n**Near-duplicate states** (cosine ≥ {DUPLICATE_COSINE}): {pairs}.")

st.subheader(f"State drift per layer, step {playback.step}")
by_layer = frames.states_by_layer(recording, key, playback.step)  # [L+1, S, D]
st.plotly_chart(drift_figure(state_drift(by_layer)), key="drift")

st.subheader("Every state of every frame")
st.dataframe(table, hide_index=True, width="stretch")
st.download_button(
    "Download the table as CSV", frames.summary_csv(recording, key), file_name=f"{recording.source}-summary.csv",
    mime="text/csv", icon=":material/download:",
)
