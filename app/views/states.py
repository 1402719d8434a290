"""States view: the S × D states of the chosen frame, and their animation through the layers."""

import streamlit as st

from app import charts, state

# Above this many frames (steps × (L+1)) only the chosen step is animated, to keep the
# figure small enough to send to the browser quickly.
MAX_ANIMATION_FRAMES = 64

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("States")
st.write(
    "Each row is one state slot and each column one of its dimensions; the bars left of the rows "
    "give each state's importance, and pruned states are marked."
)
st.markdown(f"**Frame:** {context.frame_title()}")

difference = st.toggle(
    "Difference from the previous layer", key=state.STATE_DIFF, disabled=playback.layer == 0,
    help="Show how much the chosen layer changed each value; layer 0 has no previous layer.",
) and playback.layer > 0

heatmap = charts.frame_states(
    recording, key, playback.step, playback.layer, playback.fixed_scale, difference,
    title=f"Change of the states in layer {playback.layer}" if difference else f"States, {context.layer_title()}",
)
st.plotly_chart(heatmap, key="states_heatmap")

st.subheader("Play through the layers")
frame_count = recording.num_steps * (recording.num_layers + 1)
every_step = st.toggle(
    "Through every step", key=state.ANIMATE_STEPS,
    disabled=recording.num_steps == 1 or frame_count > MAX_ANIMATION_FRAMES,
    help=f"Play the layers of step 0, then of step 1, and so on (up to {MAX_ANIMATION_FRAMES} frames).",
)
st.caption(
    "Press ▶ to play. The animation runs in the browser from prebuilt frames, so it plays smoothly; "
    "the sidebar sliders jump to one frame and redraw the page."
)
steps = tuple(range(recording.num_steps)) if every_step else (playback.step,)
st.plotly_chart(charts.layer_animation(recording, key, steps, playback.fixed_scale), key="states_animation")

# Last, because the first summary of a large recording takes seconds and the heatmap and
# animation above are drawn while it runs.
st.subheader("Flags over the recording")
st.plotly_chart(
    charts.playback_timeline(recording, key, None, playback.step, playback.layer), key="timeline"
)
