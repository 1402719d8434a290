#!/usr/bin/env bash
# Retrain every bundled checkpoint and rerecord the bundled recordings in assets/.
# Each training is seeded; the README lists the accuracy and time each one took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
CHECKPOINTS=assets/checkpoints
RECORDINGS=assets/recordings
mkdir -p "$CHECKPOINTS" "$RECORDINGS"

"$PYTHON" -m nsm_core train --task digits --out "$CHECKPOINTS/digits.safetensors" \
    --record-training "$RECORDINGS/digits_training.nsm" --force
"$PYTHON" -m nsm_core train --task recall --out "$CHECKPOINTS/recall.safetensors" --force
"$PYTHON" -m nsm_core train --task recall_hard --out "$CHECKPOINTS/recall_hard.safetensors" --force
"$PYTHON" -m nsm_core train --task recall_split --out "$CHECKPOINTS/recall_split_failing.safetensors" --force

"$PYTHON" -m nsm_core record --checkpoint "$CHECKPOINTS/digits.safetensors" --sample 0 \
    --out "$RECORDINGS/digits.nsm" --force
for name in recall recall_hard recall_split_failing; do
    "$PYTHON" -m nsm_core record --checkpoint "$CHECKPOINTS/$name.safetensors" --sample 0 \
        --out "$RECORDINGS/$name.nsm" --force
done
