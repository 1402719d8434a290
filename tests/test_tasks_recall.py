"""The recall task: token encoding of both layouts, data splits, typed input, write masks."""

from __future__ import annotations

import re

import pytest
import torch

from nsm_core.modules import NSMModel
from nsm_core.tasks import IGNORE_INDEX, RecallTask, build_task


@pytest.fixture
def small() -> RecallTask:
    return RecallTask(num_pairs=2, num_keys=4, num_values=8, num_states=2, train_size=64, test_size=16)


def test_pair_layout_ids(small):
    batch = small.encode(torch.tensor([[3, 1]]), torch.tensor([[7, 0]]), torch.tensor([[1, 0]]))

    # pair k:v -> k * 8 + v; query ?k -> 4 * 8 + k; queries ask key 1 first, then key 3.
    assert batch.inputs.tolist() == [[31, 8, 33, 35]]
    assert batch.targets.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 0, 7]]
    assert batch.write_mask.tolist() == [[True, True, False, False]]
    assert small.vocab_size == 36


def test_split_layout_ids():
    task = RecallTask(num_pairs=2, num_keys=4, num_values=8, layout="split", train_size=8, test_size=8)

    batch = task.encode(torch.tensor([[3, 1]]), torch.tensor([[7, 0]]), torch.tensor([[1, 0]]))

    # key k -> k; value v -> 4 + v; query ?k -> 4 + 8 + k.
    assert batch.inputs.tolist() == [[3, 11, 1, 4, 13, 15]]
    assert batch.targets.tolist() == [[IGNORE_INDEX] * 4 + [0, 7]]
    assert batch.write_mask.tolist() == [[True] * 4 + [False] * 2]
    assert task.vocab_size == 16


def test_generated_sequences_are_well_formed():
    task = RecallTask(num_pairs=8, train_size=500, test_size=10)

    keys, values, order = task.generate(500, torch.Generator().manual_seed(0))

    assert all(len(set(row)) == 8 for row in keys.tolist())  # distinct keys per sequence
    assert int(keys.max()) < 32
    assert int(values.max()) < 32
    assert torch.equal(order.sort(-1).values, torch.arange(8).expand(500, -1))  # every key queried once


def test_sample_answers_are_the_paired_values():
    task = build_task("recall", train_size=10, test_size=10)

    sample = task.sample(3)

    pairs = dict(map(tuple, sample.display["pairs"]))
    queries = [token for token in sample.display["tokens"] if token["role"] == "query"]
    assert len(queries) == 8
    assert [token["answer"] for token in queries] == [pairs[token["key"]] for token in queries]
    assert sample.targets[8:].tolist() == [token["answer"] for token in queries]
    assert sample.token_labels[0] == f"{sample.display['pairs'][0][0]}:{sample.display['pairs'][0][1]}"
    assert sample.token_labels[8] == f"?{queries[0]['key']}"


def test_splits_are_deterministic_and_disjoint_streams():
    first, second = (build_task("recall", train_size=50, test_size=50) for _ in range(2))

    everything = torch.arange(50)
    assert torch.equal(first.batch("test", everything).inputs, second.batch("test", everything).inputs)
    assert not torch.equal(first.batch("train", everything).inputs, first.batch("test", everything).inputs)


def test_hard_and_split_variants_have_their_defaults():
    hard = build_task("recall_hard", train_size=4, test_size=4)
    split = build_task("recall_split", train_size=4, test_size=4)

    assert hard.sample(0).inputs.shape == (32,)
    assert hard.model_config().num_states == 8
    assert split.sample(0).inputs.shape == (24,)
    assert split.sample(0).token_labels[:2][0].startswith("k")
    assert (hard.name, split.name) == ("recall_hard", "recall_split")


def test_model_config_reads_only_from_states(small):
    config = small.model_config()

    assert config.token_attention is False
    assert config.vocab_size == small.vocab_size
    assert config.num_token_classes == 8


def test_parse_matches_encoding(small):
    sample = small.parse("3:7, 1:0 ?1 ?3")

    assert sample.inputs.tolist() == [31, 8, 33, 35]
    assert sample.targets.tolist() == [IGNORE_INDEX, IGNORE_INDEX, 0, 7]
    assert sample.write_mask.tolist() == [True, True, False, False]
    assert (sample.split, sample.index) == ("typed", None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("3:7 ?3 1:0", "pair '1:0' comes after a query"),
        ("3:7 3:1 ?3", "key 3 appears in two pairs"),
        ("4:1 ?4", "key 4 in '4:1' is outside [0, 3]"),
        ("3:8 ?3", "value 8 in '3:8' is outside [0, 7]"),
        ("3:7 ?2", "query '?2' asks for key 2, which no pair has"),
        ("3:7 ?9", "key 9 in '?9' is outside [0, 3]"),
        ("3=7 ?3", "'3=7' is neither a pair"),
        ("3:7", "needs at least one pair"),
        ("", "needs at least one pair"),
    ],
)
def test_parse_rejects_bad_text(small, text, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        small.parse(text)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"num_pairs": 5, "num_keys": 4}, "num_pairs=5 is more than num_keys=4"),
        ({"layout": "interleaved"}, "layout='interleaved'"),
        ({"num_values": 1}, "num_values=1 is invalid"),
        ({"test_size": 0}, "test_size=0 is invalid"),
    ],
)
def test_invalid_parameters(params, fragment):
    with pytest.raises(ValueError, match=fragment):
        RecallTask(**params)


def test_unknown_task_name():
    with pytest.raises(ValueError, match="unknown task 'mnist'; known tasks are digits, recall"):
        build_task("mnist")


def test_queries_cannot_change_the_states(small):
    model = NSMModel(small.model_config(seed=2)).eval()
    first = small.parse("3:7 1:0 ?1 ?3").as_batch()
    other_queries = small.parse("3:7 1:0 ?3 ?3").as_batch()

    with torch.no_grad():
        states_first = model(first.inputs, write_mask=first.write_mask).state.h
        states_other = model(other_queries.inputs, write_mask=other_queries.write_mask).state.h
        states_unmasked = model(other_queries.inputs).state.h

    assert torch.equal(states_first, states_other)
    assert not torch.allclose(states_first, states_unmasked)


def test_query_predictions_follow_query_order(small):
    model = NSMModel(small.model_config())
    sample = small.parse("3:7 1:0 ?1 ?3")

    prediction = small.predict(model, sample)

    assert prediction.expected == [0, 7]
    assert len(prediction.predicted) == 2
    assert all(len(row) == 8 for row in prediction.probabilities)


def test_accuracy_counts_only_queries(small):
    model = NSMModel(small.model_config())
    batch = small.batch("test", torch.arange(16))
    with torch.no_grad():
        predicted = model(batch.inputs, write_mask=batch.write_mask).token_logits.argmax(-1)[:, 2:]

    assert small.accuracy(model, "test") == int((predicted == batch.targets[:, 2:]).sum()) / 32
