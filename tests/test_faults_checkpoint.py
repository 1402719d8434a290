"""Damaged and inconsistent checkpoints raise CheckpointError before any model is built."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

from nsm_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nsm_core.modules import NSMModel


@pytest.fixture
def checkpoint(tmp_path, small_config):
    return save_checkpoint(NSMModel(small_config), tmp_path / "model.safetensors")


def _rewrite(path, metadata, tensors=None):
    save_file(tensors if tensors is not None else load_file(path), path, metadata=metadata)


def test_config_claiming_huge_model_rejected_unbuilt(checkpoint, small_config):
    # 4096 states × 8192 dims × 256 layers: about 5·10^11 parameters if it were built.
    huge = small_config.replace(num_states=4096, state_dim=8192, token_dim=8192, num_layers=256, num_heads=64)
    _rewrite(checkpoint, {"nsm_config": huge.to_json()})

    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(checkpoint)


def test_weight_shape_disagreeing_with_config_rejected(checkpoint, small_config):
    _rewrite(checkpoint, {"nsm_config": small_config.replace(num_states=5).to_json()})

    with pytest.raises(CheckpointError, match=r"weight 'states\.\w+' has shape \(4,.*\), but the config needs \(5,"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize(
    ("config_text", "fragment"),
    [
        ("[" * 100_000, "nests JSON too deeply"),
        ('{"seed": ' + "9" * 5000 + "}", "is not valid JSON"),
        ("{", "is not valid JSON"),
        ('{"num_states": "eight"}', "num_states='eight'"),
        ('{"colour": 1}', "unknown config field"),
        ("[]", "config must be a JSON object"),
    ],
    ids=["deep", "long-integer", "truncated", "wrong-type", "unknown-key", "not-object"],
)
def test_malformed_config_rejected(checkpoint, config_text, fragment):
    _rewrite(checkpoint, {"nsm_config": config_text})

    with pytest.raises(CheckpointError, match="model.safetensors") as info:
        load_checkpoint(checkpoint)
    assert fragment in str(info.value)


def test_missing_config_rejected(checkpoint):
    _rewrite(checkpoint, {"other": json.dumps({})})

    with pytest.raises(CheckpointError, match="no 'nsm_config' metadata"):
        load_checkpoint(checkpoint)


def test_cut_off_checkpoint_rejected(checkpoint):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])

    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(checkpoint)
