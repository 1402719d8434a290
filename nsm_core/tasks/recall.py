"""Multi-query associative recall (MQAR), the standard memory benchmark for state models.

A sequence lists N key-value pairs with distinct keys, then queries every key once in a
shuffled order; the target of a query is the value paired with its key. Queries may only
read from the states (their write mask is False and the model has no token↔token
attention), so the task measures what the states hold.

Two layouts of the same data:

- "pair": each pair is one token (id key × V + value), so binding a key to its value is
  given by the input; the model must store the pairs in its S states and find them again.
- "split": key and value are separate adjacent tokens. A token routes on its own content,
  so nothing ties a value to the key before it, and this layout stalls (the debugging
  example in the README).

Token ids, with K keys and V values:
    pair layout:  pair k:v -> k * V + v, query ?k -> K * V + k
    split layout: key k -> k, value v -> K + v, query ?k -> K + V + k
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import torch

from nsm_core.config import NSMConfig
from nsm_core.tasks.base import IGNORE_INDEX, Batch, Sample, Task

LAYOUTS = ("pair", "split")
# Offsets added to data_seed so that training and test sequences come from separate streams.
TRAIN_STREAM, TEST_STREAM = 1, 2
PAIR_PATTERN = re.compile(r"^(\d+):(\d+)$")
QUERY_PATTERN = re.compile(r"^\?(\d+)$")


class RecallTask(Task):
    """Recall the values of N key-value pairs from S states.

    Train and test splits are fixed pools of random sequences drawn from separate seeded
    streams, so the test sequences are held out (a repeat would need the same 2N tokens).
    """

    target_kind = "token"

    def __init__(
        self,
        num_pairs: int = 8,
        num_keys: int = 16,
        num_values: int = 16,
        num_states: int = 8,
        layout: str = "pair",
        train_size: int = 50_000,
        test_size: int = 2_000,
        data_seed: int = 0,
        name: str = "recall",
    ) -> None:
        for field, value, low in (("num_pairs", num_pairs, 1), ("num_keys", num_keys, 1),
                                  ("num_values", num_values, 2), ("num_states", num_states, 1),
                                  ("train_size", train_size, 1), ("test_size", test_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{field}={value!r} is invalid; use an integer of at least {low}.")
        if num_pairs > num_keys:
            raise ValueError(
                f"num_pairs={num_pairs} is more than num_keys={num_keys}; keys within a sequence "
                "are distinct, so raise num_keys or lower num_pairs."
            )
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is invalid; use one of {', '.join(LAYOUTS)}.")
        self.name = name
        self.num_pairs = num_pairs
        self.num_keys = num_keys
        self.num_values = num_values
        self.num_states = num_states
        self.layout = layout
        self.train_size = train_size
        self.test_size = test_size
        self.data_seed = int(data_seed)
        self.class_names = tuple(str(value) for value in range(num_values))
        self.description = (
            f"associative recall of {num_pairs} key-value pairs ({num_keys} keys, {num_values} values) "
            f"in {num_states} states, {'one token per pair' if layout == 'pair' else 'key and value as separate tokens'}"
        )

    def params(self) -> dict[str, Any]:
        return {"num_pairs": self.num_pairs, "num_keys": self.num_keys, "num_values": self.num_values,
                "num_states": self.num_states, "layout": self.layout, "train_size": self.train_size,
                "test_size": self.test_size, "data_seed": self.data_seed}

    @property
    def vocab_size(self) -> int:
        if self.layout == "pair":
            return self.num_keys * self.num_values + self.num_keys
        return 2 * self.num_keys + self.num_values

    def model_config(self, seed: int = 0) -> NSMConfig:
        # No token↔token attention, so a query can read its target value only from the states.
        return NSMConfig(
            num_states=self.num_states, state_dim=64, token_dim=64, num_layers=2, num_heads=4,
            token_attention=False, vocab_size=self.vocab_size, num_token_classes=self.num_values,
            seed=seed,
        )

    def training_defaults(self) -> dict[str, Any]:
        # One epoch of the 50,000 training sequences is 391 steps of 128.
        epochs = 2 if self.num_pairs > self.num_states else 1
        return {"epochs": epochs, "batch_size": 128, "learning_rate": 3e-3, "weight_decay": 0.0,
                "checkpoints": 8}

    # Data ------------------------------------------------------------------------------

    def generate(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Draw `count` sequences: keys [count, N], values [count, N], query order [count, N]."""
        keys = torch.rand(count, self.num_keys, generator=generator).argsort(-1)[:, : self.num_pairs]
        values = torch.randint(self.num_values, (count, self.num_pairs), generator=generator)
        query_order = torch.rand(count, self.num_pairs, generator=generator).argsort(-1)
        return keys, values, query_order

    @cached_property
    def _splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        streams = {"train": (TRAIN_STREAM, self.train_size), "test": (TEST_STREAM, self.test_size)}
        splits = {}
        for split, (stream, size) in streams.items():
            generator = torch.Generator().manual_seed(self.data_seed * 1_000 + stream)
            splits[split] = self.generate(size, generator)
        return splits

    def split_size(self, split: str) -> int:
        self.check_split(split)
        return self.train_size if split == "train" else self.test_size

    def encode(self, keys: torch.Tensor, values: torch.Tensor, query_order: torch.Tensor) -> Batch:
        """Build token ids, targets and write masks from keys, values, query order [B, N]."""
        batch, num_pairs = keys.shape
        query_keys = keys.gather(1, query_order)
        answers = values.gather(1, query_order)
        num_writers = num_pairs if self.layout == "pair" else 2 * num_pairs

        if self.layout == "pair":
            writers = keys * self.num_values + values
            queries = self.num_keys * self.num_values + query_keys
        else:
            writers = torch.stack([keys, self.num_keys + values], dim=-1).reshape(batch, num_writers)
            queries = self.num_keys + self.num_values + query_keys

        inputs = torch.cat([writers, queries], dim=1)  # [B, T]
        ignored = torch.full((batch, num_writers), IGNORE_INDEX, dtype=torch.int64)
        targets = torch.cat([ignored, answers], dim=1)
        write_mask = torch.arange(inputs.shape[1]).expand(batch, -1) < num_writers
        return Batch(inputs, targets, write_mask)

    def batch(self, split: str, indices: torch.Tensor) -> Batch:
        self.check_split(split)
        keys, values, query_order = (tensor[indices] for tensor in self._splits[split])
        return self.encode(keys, values, query_order)

    # Samples and display ---------------------------------------------------------------

    def sample(self, index: int, split: str = "test") -> Sample:
        self.check_index(index, split)
        keys, values, query_order = (tensor[index : index + 1] for tensor in self._splits[split])
        return self._sample(keys, values, query_order, split, index)

    def parse(self, text: str) -> Sample:
        """Build a sample from typed text such as "3:7 12:5 9:0 ?12 ?3".

        "K:V" is a pair and "?K" a query, separated by spaces or commas; pairs come first,
        keys are distinct, and every query names a key of a pair. Raises ValueError that
        names the offending item.
        """
        items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
        pairs: dict[int, int] = {}
        queries: list[int] = []
        for item in items:
            if match := PAIR_PATTERN.match(item):
                if queries:
                    raise ValueError(f"pair {item!r} comes after a query; list all pairs first, then the queries.")
                key, value = int(match[1]), int(match[2])
                self._check_range(item, "key", key, self.num_keys)
                self._check_range(item, "value", value, self.num_values)
                if key in pairs:
                    raise ValueError(f"key {key} appears in two pairs; keys within a sequence must be distinct.")
                pairs[key] = value
            elif match := QUERY_PATTERN.match(item):
                key = int(match[1])
                self._check_range(item, "key", key, self.num_keys)
                if key not in pairs:
                    raise ValueError(f"query {item!r} asks for key {key}, which no pair has; add a pair {key}:V.")
                queries.append(key)
            else:
                raise ValueError(f"{item!r} is neither a pair like 3:7 nor a query like ?3.")
        if not pairs or not queries:
            raise ValueError(f"{text!r} needs at least one pair (3:7) and one query (?3).")

        keys = torch.tensor([list(pairs)])
        values = torch.tensor([list(pairs.values())])
        order = torch.tensor([[list(pairs).index(key) for key in queries]])
        return self._sample(keys, values, order, "typed", None)

    def _check_range(self, item: str, kind: str, number: int, limit: int) -> None:
        if not 0 <= number < limit:
            raise ValueError(f"{kind} {number} in {item!r} is outside [0, {limit - 1}].")

    def _sample(self, keys: torch.Tensor, values: torch.Tensor, query_order: torch.Tensor,
                split: str, index: int | None) -> Sample:
        encoded = self.encode(keys, values, query_order)
        key_list, value_list = keys[0].tolist(), values[0].tolist()
        query_keys = keys[0][query_order[0]].tolist()
        answers = values[0][query_order[0]].tolist()

        tokens: list[dict[str, Any]] = []
        labels: list[str] = []
        for key, value in zip(key_list, value_list):
            if self.layout == "pair":
                tokens.append({"role": "pair", "key": key, "value": value})
                labels.append(f"{key}:{value}")
            else:
                tokens += [{"role": "key", "key": key}, {"role": "value", "value": value}]
                labels += [f"k{key}", f"v{value}"]
        for key, answer in zip(query_keys, answers):
            tokens.append({"role": "query", "key": key, "answer": answer})
            labels.append(f"?{key}")

        return Sample(
            inputs=encoded.inputs[0],
            targets=encoded.targets[0],
            token_labels=labels,
            display={"kind": "recall_sequence", "layout": self.layout, "tokens": tokens,
                     "pairs": [[key, value] for key, value in zip(key_list, value_list)]},
            write_mask=encoded.write_mask[0],
            split=split,
            index=index,
        )
