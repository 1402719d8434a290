"""States view: the S × D states of the chosen frame, and their animation through the layers."""

import streamlit as st

from app import frames, state
from app.figures.states import states_animation, states_heatmap

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("States")
st.write(
    "Each row is one state slot and each column one of its dimensions, at the frame chosen in "
    "the sidebar; the marks beside the rows give each state's importance and whether it is active."
)

difference = st.toggle(
    "Difference from the previous layer", key=state.STATE_DIFF, disabled=playback.layer == 0,
    help="Show how much the chosen layer changed each value; layer 0 has no previous layer.",
) and playback.layer > 0

by_layer = frames.states_by_layer(recording, key, playback.step)  # [L+1, S, D]
importance = frames.per_state_by_layer(recording, key, playback.step, "importance")  # [L+1, S]
active = frames.per_state_by_layer(recording, key, playback.step, "active")  # [L+1, S]
zrange = frames.states_range(recording, key, difference) if playback.fixed_scale else None

what = "Change of the states" if difference else "States"
heatmap = states_heatmap(
    by_layer[playback.layer],
    importance=None if importance is None else importance[playback.layer],
    active=None if active is None else active[playback.layer],
    zrange=zrange,
    title=f"{what}, {context.frame_title()}",
    diff_from=by_layer[playback.layer - 1] if difference else None,
)
st.plotly_chart(heatmap, key="states_heatmap")

st.subheader("Play through the layers")
st.caption(
    "Press play to step through every layer of this step. The animation runs in the browser, "
    "so it is smooth; the sidebar sliders jump to one frame."
)
animation = states_animation(
    by_layer,
    zrange=frames.states_range(recording, key) if playback.fixed_scale else None,
    importance_by_layer=importance,
    active_by_layer=active,
)
st.plotly_chart(animation, key="states_animation")
