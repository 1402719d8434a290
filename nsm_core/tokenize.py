"""Byte-level tokens: every UTF-8 byte is one token id in [0, 255]."""

from __future__ import annotations

import torch


def encode_bytes(text: str) -> torch.Tensor:
    """Return the UTF-8 bytes of text as token ids [T] (int64)."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)


def byte_labels(text: str) -> list[str]:
    """Return one readable label per UTF-8 byte of text.

    An ASCII character is its own label; each byte of a multi-byte character is labelled
    with the character and the byte's position, such as "é(1/2)" and "é(2/2)", so the
    labels stay legible and the same length as the token ids.
    """
    labels: list[str] = []
    for character in text:
        encoded = character.encode("utf-8")
        if len(encoded) == 1:
            labels.append(character if character.isprintable() else f"\\x{encoded[0]:02x}")
            continue
        for index in range(len(encoded)):
            labels.append(f"{character}({index + 1}/{len(encoded)})")
    return labels


def split_steps(length: int, num_steps: int) -> list[slice]:
    """Split [0, length) into num_steps contiguous chunks of near-equal size (none empty)."""
    if num_steps < 1:
        raise ValueError(f"steps={num_steps} must be at least 1.")
    if length and num_steps > length:
        raise ValueError(
            f"steps={num_steps} is more than the {length} tokens of the input; every step needs "
            f"at least one token, so use --steps {length} or fewer."
        )
    if length == 0:
        return [slice(0, 0)] * num_steps
    bounds = [round(index * length / num_steps) for index in range(num_steps + 1)]
    return [slice(bounds[index], bounds[index + 1]) for index in range(num_steps)]
