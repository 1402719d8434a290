"""Handwritten digits: scikit-learn's bundled 8×8 images, read as a sequence of tokens.

The data set ships inside scikit-learn (1,797 images of the digits 0-9, pixel values 0-16),
so no download is needed. An image becomes T tokens of pixel features: its 8 rows (T = 8,
8 features each) or its 2×2 patches in reading order (T = 16, 4 features each). The model
classifies the sequence into 10 classes with its per-sequence head.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch

from nsm_core.config import NSMConfig
from nsm_core.tasks.base import Batch, Sample, Task

IMAGE_SIZE = 8
MAX_PIXEL = 16.0  # load_digits stores intensities as integers 0..16
TOKENIZATIONS = ("rows", "patches")
PATCH = 2  # side of a square patch in pixels


class DigitsTask(Task):
    """Classify an 8×8 digit image, fed as a sequence of rows or patches.

    The split is stratified by class and fixed by split_seed: test_fraction of the images
    (360 of 1,797 at the default 0.2) are held out for testing.
    """

    name = "digits"
    description = "scikit-learn handwritten digits (8×8), classified into 10 classes"
    target_kind = "sequence"
    class_names = tuple(str(digit) for digit in range(10))

    def __init__(self, tokens: str = "rows", test_fraction: float = 0.2, split_seed: int = 0) -> None:
        if tokens not in TOKENIZATIONS:
            raise ValueError(f"tokens={tokens!r} is invalid; use one of {', '.join(TOKENIZATIONS)}.")
        if not 0.05 <= test_fraction <= 0.5:
            raise ValueError(f"test_fraction={test_fraction!r} is outside [0.05, 0.5].")
        self.tokens = tokens
        self.test_fraction = float(test_fraction)
        self.split_seed = int(split_seed)

    def params(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "test_fraction": self.test_fraction, "split_seed": self.split_seed}

    @property
    def num_tokens(self) -> int:
        return IMAGE_SIZE if self.tokens == "rows" else (IMAGE_SIZE // PATCH) ** 2

    @property
    def input_dim(self) -> int:
        return IMAGE_SIZE if self.tokens == "rows" else PATCH * PATCH

    def model_config(self, seed: int = 0) -> NSMConfig:
        return NSMConfig(
            num_states=8, state_dim=64, token_dim=64, num_layers=2, num_heads=4,
            input_dim=self.input_dim, num_classes=10, seed=seed,
        )

    def training_defaults(self) -> dict[str, Any]:
        # One checkpoint per epoch, so the training recording steps through epochs 0-20.
        return {"epochs": 20, "batch_size": 64, "learning_rate": 3e-3, "weight_decay": 1e-2,
                "checkpoints": 20}

    @cached_property
    def _splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = digits.images.astype(np.float32)  # [N, 8, 8], values 0..16
        labels = digits.target.astype(np.int64)
        train_x, test_x, train_y, test_y = train_test_split(
            images, labels, test_size=self.test_fraction, stratify=labels, random_state=self.split_seed
        )
        return {"train": (train_x, train_y), "test": (test_x, test_y)}

    def split_size(self, split: str) -> int:
        self.check_split(split)
        return len(self._splits[split][1])

    def image(self, index: int, split: str = "test") -> np.ndarray:
        """Return image `index` of `split` as [8, 8] pixel values 0..16."""
        self.check_index(index, split)
        return self._splits[split][0][index]

    def to_tokens(self, images: np.ndarray) -> torch.Tensor:
        """Turn images [B, 8, 8] (values 0..16) into token features [B, T, input_dim] in [0, 1]."""
        scaled = torch.as_tensor(images, dtype=torch.float32) / MAX_PIXEL
        if self.tokens == "rows":
            return scaled  # [B, T=8 rows, 8 pixels]
        blocks = IMAGE_SIZE // PATCH
        patches = scaled.reshape(-1, blocks, PATCH, blocks, PATCH).permute(0, 1, 3, 2, 4)
        return patches.reshape(-1, blocks * blocks, PATCH * PATCH)  # [B, T=16, 4 pixels]

    def token_regions(self) -> list[list[int]]:
        """Return the pixels each token covers as [row_start, row_stop, col_start, col_stop]."""
        if self.tokens == "rows":
            return [[row, row + 1, 0, IMAGE_SIZE] for row in range(IMAGE_SIZE)]
        blocks = IMAGE_SIZE // PATCH
        return [[r * PATCH, (r + 1) * PATCH, c * PATCH, (c + 1) * PATCH]
                for r in range(blocks) for c in range(blocks)]

    def token_labels(self) -> list[str]:
        if self.tokens == "rows":
            return [f"row {row}" for row in range(IMAGE_SIZE)]
        blocks = IMAGE_SIZE // PATCH
        return [f"patch {r},{c}" for r in range(blocks) for c in range(blocks)]

    def batch(self, split: str, indices: torch.Tensor) -> Batch:
        self.check_split(split)
        images, labels = self._splits[split]
        chosen = indices.numpy()
        return Batch(self.to_tokens(images[chosen]), torch.as_tensor(labels[chosen]))

    def sample(self, index: int, split: str = "test") -> Sample:
        image = self.image(index, split)
        label = int(self._splits[split][1][index])
        return Sample(
            inputs=self.to_tokens(image[None])[0],
            targets=torch.tensor(label),
            token_labels=self.token_labels(),
            display={
                "kind": "digit_image",
                "image": image.astype(int).tolist(),
                "max_pixel": MAX_PIXEL,
                "label": label,
                "token_regions": self.token_regions(),
            },
            split=split,
            index=index,
        )
