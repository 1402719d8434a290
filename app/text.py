"""Show text from a recording (token and step labels, file names) literally in Streamlit.

Streamlit renders st.caption, st.markdown and st.subheader as Markdown with LaTeX, so a
token label "*x*" would show in italics and "$y$" as a formula. Plotly figures escape
their own text (app/figures/style.py, escape_label).
"""

from __future__ import annotations

import re
import unicodedata

# The characters that start inline Markdown in Streamlit: CommonMark emphasis, code, links,
# HTML and entities, GFM strikethrough and tables, and "$" for LaTeX. The text is never at the
# start of a line, so list and heading markers ("-", "1.", "#") need no escape. CommonMark
# lets a backslash escape any ASCII punctuation character.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>&~$|])")
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible_text(text: str) -> str:
    """Replace control characters with escapes such as "\\n" and "\\x1b", and lone surrogates with "\\udXXX"."""
    characters = []
    for character in str(text):
        if character in _CONTROL_ESCAPES:
            characters.append(_CONTROL_ESCAPES[character])
        elif unicodedata.category(character) == "Cc":
            characters.append(f"\\x{ord(character):02x}")
        else:
            characters.append(character)
    return "".join(characters).encode("utf-8", "backslashreplace").decode("utf-8")


def markdown_literal(text: str) -> str:
    """Return Markdown that Streamlit shows as exactly `text`, with control characters made visible."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", visible_text(text))


def quoted_label(label: str) -> str:
    """Return a token or step label in quotes, as Markdown shown literally: '<s>' for "<s>"."""
    return markdown_literal(f"'{label}'")
