"""Routing view: token→state routing weights and state↔state attention at the chosen frame."""

import streamlit as st

from app import frames, state
from app.figures.routing import attention_graph, attention_heatmap, routing_graph, routing_heatmap

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback

st.title("Routing")
st.write(
    "Which states each token is routed to (each token's weights sum to 1 over the states), "
    "and how the states attend to each other, at the frame chosen in the sidebar."
)
if playback.layer == 0:
    st.info("Layer 0 holds the initial states; routing starts at layer 1. Move the layer slider to 1 or more.")
    st.stop()

routing = frames.head_matrix(recording, key, "routing", playback.step, playback.layer, playback.head)  # [T, S]
if routing is None:
    st.info("This recording has no routing weights: its model records states only.")
else:
    labels = recording.token_labels(playback.step)
    where = f"{context.frame_title()}, {context.head_title()}"
    heatmap, graph = st.columns(2)
    heatmap.plotly_chart(
        routing_heatmap(routing, labels, threshold=playback.threshold, title=f"Routing weights, {where}"),
        key="routing_heatmap",
    )
    graph.plotly_chart(routing_graph(routing, labels, threshold=playback.threshold, top_k=None), key="routing_graph")
    if playback.token is not None and routing.shape[0]:
        token = playback.token
        st.plotly_chart(
            routing_heatmap(
                routing[token : token + 1], [labels[token]], threshold=playback.threshold,
                title=f"Token {token} {labels[token]!r}: routing weights, {where}",
            ),
            key="routing_token",
        )

attention = frames.head_matrix(recording, key, "state_attention", playback.step, playback.layer, playback.head)
if attention is not None:
    st.subheader("State↔state attention")
    heatmap, graph = st.columns(2)
    heatmap.plotly_chart(
        attention_heatmap(attention, title=f"State attention, {context.frame_title()}, {context.head_title()}"),
        key="attention_heatmap",
    )
    graph.plotly_chart(attention_graph(attention, threshold=playback.threshold), key="attention_graph")
