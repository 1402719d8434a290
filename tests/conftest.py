from __future__ import annotations

import pytest
import torch

from nsm_core.config import NSMConfig
from nsm_core.modules import NSMModel


@pytest.fixture
def small_config() -> NSMConfig:
    return NSMConfig(num_states=4, state_dim=8, token_dim=8, num_layers=2, num_heads=2, seed=3)


@pytest.fixture
def small_model(small_config: NSMConfig) -> NSMModel:
    return NSMModel(small_config).eval()


@pytest.fixture
def token_ids() -> torch.Tensor:
    return torch.tensor([[3, 14, 15, 92, 65, 35]])  # [B=1, T=6]
