"""A toy regression data set, small enough to train on in a second."""

from __future__ import annotations

import logging
import random

logger = logging.getLogger(__name__)

Sample = tuple[float, float]


def make_dataset(size: int, seed: int = 0, noise: float = 0.1) -> list[Sample]:
    """Return ``size`` points of y = 3x + 2 with Gaussian noise, x in [-1, 1]."""
    rng = random.Random(seed)
    samples = []
    for _ in range(size):
        x = rng.uniform(-1.0, 1.0)
        samples.append((x, 3.0 * x + 2.0 + rng.gauss(0.0, noise)))
    logger.info("Generated %d samples (seed=%d, noise=%.2f)", size, seed, noise)
    return samples


def split(
    samples: list[Sample], valid_fraction: float = 0.2
) -> tuple[list[Sample], list[Sample]]:
    """Split into training and validation sets, keeping the order."""
    cut = int(len(samples) * (1.0 - valid_fraction))
    logger.debug("Split at %d: %d train, %d valid", cut, cut, len(samples) - cut)
    return samples[:cut], samples[cut:]
