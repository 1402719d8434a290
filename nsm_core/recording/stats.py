"""Value statistics of a recording: finite ranges and counts of NaN and ±Inf per field.

Padding of short steps is NaN by design (see recorder.step_arrays) and is left out. The
only other NaN that the model did not produce are the initial_states of an adapter that
records none; non_finite_warnings() reports those as not recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nsm_core.recording.reader import Recording
from nsm_core.recording.schema import FIELDS

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
# Fields whose rows are softmax distributions; a NaN row means every entry was masked.
DISTRIBUTION_FIELDS = ("routing", "state_attention", "readout", "token_attention")


@dataclass(frozen=True)
class FieldStats:
    """Range and non-finite counts of one field over all steps and layers."""

    name: str
    count: int  # values examined: every step and layer, padding left out
    min: float | None  # over finite values; None when there are none
    max: float | None
    nan: int
    posinf: int
    neginf: int
    # (step, layer) of the first NaN or ±Inf, or None if all values are finite. Layers are
    # numbered as frames are: 0 for initial_states, 1..L for the layers, None for per-step fields.
    first_non_finite: tuple[int, int | None] | None

    @property
    def non_finite(self) -> int:
        return self.nan + self.posinf + self.neginf

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        del values["name"]
        values["first_non_finite"] = None if self.first_non_finite is None else list(self.first_non_finite)
        return values


def field_stats(recording: Recording, name: str) -> FieldStats:
    """Return the finite range and NaN/+Inf/−Inf counts of field `name`, reading one step at a time."""
    array = recording.array(name)
    spec = FIELDS[name]
    token_axes = [index - 1 for index, axis in enumerate(spec.axes) if axis == "T"]
    low, high = np.inf, -np.inf
    counts = {"count": 0, "nan": 0, "posinf": 0, "neginf": 0}
    first = None
    for step in range(array.shape[0]):
        values = np.asarray(array[step], dtype=np.float32)
        if token_axes and recording.has("token_mask"):
            real = int(recording.array("token_mask")[step].sum())
            for axis in token_axes:
                values = np.take(values, np.arange(real), axis=axis)
        counts["count"] += values.size
        finite = np.isfinite(values)
        if finite.any():
            low, high = min(low, float(values[finite].min())), max(high, float(values[finite].max()))
        if finite.all():
            continue
        counts["nan"] += int(np.isnan(values).sum())
        counts["posinf"] += int(np.isposinf(values).sum())
        counts["neginf"] += int(np.isneginf(values).sum())
        if first is None:
            first = (step, _first_layer(name, finite))
    return FieldStats(
        name=name,
        min=None if low == np.inf else low,
        max=None if high == -np.inf else high,
        first_non_finite=first,
        **counts,
    )


def _first_layer(name: str, finite: np.ndarray) -> int | None:
    if name == "initial_states":
        return 0
    if not FIELDS[name].per_layer:
        return None
    per_layer = finite.reshape(finite.shape[0], -1).all(axis=1)  # [L]
    return int(np.argmin(per_layer)) + 1


def recording_stats(recording: Recording) -> dict[str, FieldStats]:
    """Return field_stats() of every float field and of `active` (token_mask is left out)."""
    return {name: field_stats(recording, name) for name in recording.fields if name != "token_mask"}


def non_finite_warnings(recording: Recording, stats: dict[str, FieldStats]) -> list[str]:
    """Return one plain-language warning per field that contains NaN or ±Inf, with a likely cause."""
    float16 = recording.manifest["dtype"] == "float16" or recording.model_info.get("dtype") in (
        "float16", "torch.float16",
    )
    warnings = []
    for field in stats.values():
        if not field.non_finite:
            continue
        if field.name == "initial_states" and field.nan == field.count:
            warnings.append(
                "initial_states were not recorded (all NaN): the adapter names no initial_states module, "
                "so layer 0 shows no states."
            )
            continue
        step, layer = field.first_non_finite
        where = f"step {step}" if layer is None else f"step {step}, layer {layer}"
        message = (
            f"{field.name} has {field.nan} NaN, {field.posinf} +Inf and {field.neginf} -Inf values "
            f"(first at {where})."
        )
        if field.posinf or field.neginf:
            if float16:
                message += (
                    f" float16 holds values only up to ±{FLOAT16_MAX:g}, so larger ones overflow to ±Inf; "
                    "record a float32 model with --dtype float32 to keep them."
                )
            else:
                message += " The model produced infinite values (an overflow or a division by zero)."
        if field.nan and field.name in DISTRIBUTION_FIELDS:
            message += " A NaN row means every entry of a softmax was masked, for example a token with no active state."
        warnings.append(message)
    return warnings
