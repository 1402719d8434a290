"""Token, step and gate labels that every encoder accepts and every reader can see."""

from __future__ import annotations

# Decoding bytes with errors="surrogateescape" maps each undecodable byte 0xNN to U+DCNN.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
_SURROGATES = range(0xD800, 0xE000)


def legible_text(text: str) -> str:
    """Return `text` with each lone surrogate replaced by a visible escape.

    A lone surrogate (for example a byte-level token fragment decoded with
    errors="surrogateescape") cannot be encoded as UTF-8, so printing it or sending it to a
    browser fails. An escaped byte U+DCNN becomes the four characters "\\xNN"; any other
    lone surrogate becomes "\\uNNNN". Every other character, emoji and markup included, is
    kept as it is.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    pieces = []
    for character in text:
        code = ord(character)
        if code in _ESCAPED_BYTES:
            pieces.append(f"\\x{code - 0xDC00:02x}")
        elif code in _SURROGATES:
            pieces.append(f"\\u{code:04x}")
        else:
            pieces.append(character)
    return "".join(pieces)
