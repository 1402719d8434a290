"""Routing view: token→state routing weights and state↔state attention at the chosen frame."""

import streamlit as st

from app import frames, state, task_input
from app.figures.routing import (
    attention_graph,
    attention_heatmap,
    routing_graph,
    routing_heatmap,
    token_attention_heatmap,
)

TOKEN_ROW_HEIGHT = 260  # pixels for the one-row heatmap of the chosen token

context = state.view_context()
recording, key, playback = context.recording, context.key, context.playback
layer = context.layer_title()
labels = recording.token_labels(playback.step)


def matrix(name: str):
    """Return the chosen head (or the mean over heads) of a field at the chosen frame."""
    return frames.head_matrix(recording, key, name, playback.step, playback.layer, playback.head)


def draw_routing() -> None:
    routing = matrix("routing")  # [T, S]
    if routing is None:
        st.info("This recording has no routing weights: its model records states only.")
        return
    st.subheader("Token→state routing")
    left, right = st.columns(2)
    left.plotly_chart(
        routing_heatmap(routing, labels, threshold=playback.threshold, title=f"Routing weights, {layer}"),
        key="routing_heatmap",
    )
    right.plotly_chart(
        routing_graph(routing, labels, threshold=playback.threshold, title=f"Routing graph, {layer}"),
        key="routing_graph",
    )
    if playback.token is not None and routing.shape[0]:
        token = playback.token
        row = routing_heatmap(
            routing[token : token + 1], [labels[token]], threshold=playback.threshold,
            title=f"Token {token} {labels[token]!r}, routing weights in {layer}",
        )
        st.plotly_chart(row.update_layout(height=TOKEN_ROW_HEIGHT), key="routing_token")


def draw_attention() -> None:
    attention = matrix("state_attention")  # [S, S]
    if attention is None:
        return
    st.subheader("State↔state attention")
    left, right = st.columns(2)
    left.plotly_chart(attention_heatmap(attention, title=f"State attention, {layer}"), key="attention_heatmap")
    right.plotly_chart(
        attention_graph(attention, threshold=playback.threshold, title=f"State attention graph, {layer}"),
        key="attention_graph",
    )


def draw_readout() -> None:
    readout, token_attention = matrix("readout"), matrix("token_attention")  # [T, S], [T, T]
    if readout is None and token_attention is None:
        return
    with st.expander("Readout from states and token↔token attention"):
        left, right = st.columns(2)
        if readout is not None:
            left.plotly_chart(
                routing_heatmap(
                    readout, labels, threshold=playback.threshold, title=f"Readout weights, {layer}",
                    value_name="readout weight",
                ),
                key="readout_heatmap",
            )
        if token_attention is not None:
            right.plotly_chart(
                token_attention_heatmap(
                    token_attention, labels, threshold=playback.threshold, title=f"Token attention, {layer}"
                ),
                key="token_attention_heatmap",
            )


st.title("Routing")
st.write(
    "Which states each token is routed to (each token's weights sum to 1 over the states), "
    "and how the states attend to each other. Weights below the sidebar threshold are faint or hidden."
)
st.markdown(f"**Frame:** {context.frame_title()}, {context.head_title()}")
if task_input.has_task_input(recording.extra):
    task_input.show_task_input(context)
if playback.layer == 0:
    st.info("Layer 0 holds the initial states; routing starts at layer 1. Move the layer slider to 1 or more.")
else:
    draw_routing()
    draw_attention()
    draw_readout()
