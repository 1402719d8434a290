"""NSM model components: shapes, masks, gating maths, routing, pruning, tutorial dynamics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nsm_core.config import ConfigError, NSMConfig
from nsm_core.modules import NSMModel, TutorialConfig, TutorialDynamics
from nsm_core.modules.gates import GRUStateUpdate, LSTMStateUpdate
from nsm_core.modules.state_manager import StateManager


def test_forward_shapes(small_config, token_ids):
    config = small_config.replace(num_classes=3, num_token_classes=5)
    output = NSMModel(config)(token_ids)

    assert output.tokens.shape == (1, 6, 8)
    assert output.state.h.shape == (1, 4, 8)
    assert output.state.c is None
    assert output.sequence_logits.shape == (1, 3)
    assert output.token_logits.shape == (1, 6, 5)


def test_lstm_carries_cell_state(small_config, token_ids):
    model = NSMModel(small_config.replace(gate="lstm"))
    first = model(token_ids)
    second = model(token_ids, state=first.state)

    assert first.state.c.shape == (1, 4, 8)
    assert not torch.equal(first.state.h, second.state.h)


def test_feature_vector_inputs(small_config):
    model = NSMModel(small_config.replace(input_dim=5, num_classes=2))
    output = model(torch.randn(3, 7, 5))

    assert output.sequence_logits.shape == (3, 2)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("num_states", 0, "num_states=0"),
        ("num_states", 2.5, "num_states=2.5"),
        ("gate", "rnn", "gate='rnn'"),
        ("routing_temperature", 0.0, "routing_temperature=0.0"),
        ("routing_top_k", 9, "routing_top_k=9"),
        ("prune_threshold", 1.5, "prune_threshold=1.5"),
        ("num_heads", 3, "not divisible by num_heads=3"),
    ],
)
def test_config_rejects_invalid_value(field, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        NSMConfig(**{field: value})


def test_config_from_dict_rejects_unknown_key():
    with pytest.raises(ConfigError, match="unknown config field"):
        NSMConfig.from_dict({"num_sates": 4})


def test_same_seed_builds_same_weights(small_config):
    first, second = NSMModel(small_config), NSMModel(small_config)
    other = NSMModel(small_config.replace(seed=4))

    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(first.states.initial, other.states.initial)


def test_routing_rows_sum_to_one(small_config, token_ids):
    model = NSMModel(small_config.replace(routing_top_k=2))
    captured = []
    model.layers[0].router.hook_weights.register_forward_hook(lambda m, i, o: captured.append(o))
    model(token_ids)
    weights = captured[0]  # [B, H, T, S]

    assert weights.shape == (1, 2, 6, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2, 6), rtol=0, atol=1e-6)
    # Top-2 routing leaves exactly two non-zero weights per token and head.
    assert torch.equal((weights > 0).sum(-1), torch.full((1, 2, 6), 2))


def test_routing_skips_inactive_states(small_config, token_ids):
    model = NSMModel(small_config.replace(prune_threshold=0.5))
    with torch.no_grad():
        model.states.importance_logits[1] = -5.0  # importance 0.0067 < 0.5
    captured = []
    model.layers[0].router.hook_weights.register_forward_hook(lambda m, i, o: captured.append(o))
    initial = model.states.initial_states(1).clone()
    output = model(token_ids)

    assert torch.equal(captured[0][..., 1], torch.zeros(1, 2, 6))
    # An inactive state passes through every layer unchanged.
    assert torch.equal(output.state.h[0, 1], initial[0, 1])


def test_gru_update_matches_hand_computation():
    update = GRUStateUpdate(state_dim=1)
    with torch.no_grad():
        # Rows are (reset, update, candidate), as in torch.nn.GRUCell.
        update.input_proj.weight.copy_(torch.tensor([[1.0], [2.0], [3.0]]))
        update.input_proj.bias.zero_()
        update.hidden_proj.weight.copy_(torch.tensor([[0.5], [-1.0], [2.0]]))
        update.hidden_proj.bias.zero_()
    x, h = torch.tensor([[[1.0]]]), torch.tensor([[[2.0]]])
    new_h, cell = update(x, h)

    # r = σ(1·1 + 0.5·2) = σ(2); z = σ(2·1 − 1·2) = σ(0) = 0.5; n = tanh(3 + r·2·2)
    reset = torch.sigmoid(torch.tensor(2.0))
    candidate = torch.tanh(3.0 + reset * 4.0)
    expected = 0.5 * candidate + 0.5 * 2.0
    assert cell is None
    torch.testing.assert_close(new_h.squeeze(), expected, rtol=0, atol=1e-6)


def test_gru_update_matches_torch_gru_cell():
    torch.manual_seed(0)
    update, reference = GRUStateUpdate(state_dim=6), nn.GRUCell(6, 6)
    with torch.no_grad():
        update.input_proj.weight.copy_(reference.weight_ih)
        update.input_proj.bias.copy_(reference.bias_ih)
        update.hidden_proj.weight.copy_(reference.weight_hh)
        update.hidden_proj.bias.copy_(reference.bias_hh)
    x, h = torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    new_h, _ = update(x, h)

    expected = reference(x.reshape(6, 6), h.reshape(6, 6)).reshape(2, 3, 6)
    torch.testing.assert_close(new_h, expected, rtol=1e-5, atol=1e-6)


def test_lstm_update_matches_torch_lstm_cell():
    torch.manual_seed(0)
    update, reference = LSTMStateUpdate(state_dim=4), nn.LSTMCell(4, 4)
    with torch.no_grad():
        update.input_proj.weight.copy_(reference.weight_ih)
        update.input_proj.bias.copy_(reference.bias_ih)
        update.hidden_proj.weight.copy_(reference.weight_hh)
        update.hidden_proj.bias.copy_(reference.bias_hh)
    x, h, c = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    new_h, new_c = update(x[None], h[None], c[None])

    expected_h, expected_c = reference(x, (h, c))
    torch.testing.assert_close(new_h[0], expected_h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new_c[0], expected_c, rtol=1e-5, atol=1e-6)


def test_pruning_never_empties():
    manager = StateManager(num_states=5, state_dim=4)
    with torch.no_grad():
        manager.importance_logits.copy_(torch.tensor([-3.0, -1.0, -2.0, -4.0, -5.0]))
    freed = manager.prune(threshold=0.99)

    assert freed == [0, 2, 3, 4]
    assert manager.allocated.tolist() == [False, True, False, False, False]
    assert manager.active_mask(threshold=1.0).tolist() == [False, True, False, False, False]


def test_allocation_reuses_then_grows():
    manager = StateManager(num_states=3, state_dim=4)
    with torch.no_grad():
        manager.importance_logits[2] = -10.0
    manager.prune(threshold=0.5)
    indices = manager.allocate(2)

    assert indices == [2, 3]
    assert manager.num_states == 4
    assert manager.allocated.tolist() == [True, True, True, True]
    assert manager.initial.shape == (4, 4)


def test_tutorial_equals_plain_torch_recipe():
    for seed in (0, 7, 1234):
        model = TutorialDynamics(TutorialConfig(seed=seed))
        final = model()[0]

        torch.manual_seed(seed)
        expected = torch.randn(5, 10)
        for _ in range(4):
            expected = expected + 0.1 * torch.randn(5, 10)
        assert torch.equal(final, expected)


def test_tutorial_leaves_global_rng_alone():
    torch.manual_seed(1)
    before = torch.random.get_rng_state()
    TutorialDynamics()()

    assert torch.equal(torch.random.get_rng_state(), before)
