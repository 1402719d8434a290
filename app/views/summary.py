"""Summary view: routing entropy, load, dead and near-duplicate states, collapse and drift."""

import streamlit as st

from app import state

context = state.view_context()
st.title("Summary")
