"""A toy training loop: fit a line by stochastic gradient descent."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
{%- if cookiecutter.use_tqdm %}

from tqdm import tqdm
{%- endif %}

from .config import log_metrics
from .data import Sample

logger = logging.getLogger(__name__)
LOG_EVERY = 50  # steps between DEBUG records: one per sample would flood the files


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


@dataclass
class LinearModel:
    weight: float = 0.0
    bias: float = 0.0

    def predict(self, x: float) -> float:
        return self.weight * x + self.bias


def mean_squared_error(model: LinearModel, samples: list[Sample]) -> float:
    return sum((model.predict(x) - y) ** 2 for x, y in samples) / len(samples)


def train(
    train_set: list[Sample], valid_set: list[Sample], epochs: int, lr: float
) -> LinearModel:
    """Train for ``epochs`` passes; raise TrainingDiverged if the loss blows up."""
    model = LinearModel()
    best = math.inf
{%- if cookiecutter.use_tqdm %}
    # The bar shows on a terminal only (disable=None): piped output stays clean.
    bar = tqdm(
        range(1, epochs + 1), "training", unit="epoch", leave=False, disable=None
    )
    for epoch in bar:
{%- else %}
    for epoch in range(1, epochs + 1):
{%- endif %}
        train_loss = 0.0
        for step, (x, y) in enumerate(train_set, start=1):
            error = model.predict(x) - y
            model.weight -= lr * 2.0 * error * x
            model.bias -= lr * 2.0 * error
            train_loss += error * error
            if step % LOG_EVERY == 0:
                logger.debug("epoch %d step %d loss %.4f", epoch, step, error * error)
        valid_loss = mean_squared_error(model, valid_set)
        if not math.isfinite(valid_loss) or valid_loss > 1e6:
            raise TrainingDiverged(f"validation loss {valid_loss:.3g} at epoch {epoch}")
        train_loss /= len(train_set)
        log_metrics(epoch, train_loss=train_loss, valid_loss=valid_loss)
{%- if cookiecutter.log_format == "json" %}
        logger.info(
            "epoch %d/%d valid_loss=%.4f",
            epoch,
            epochs,
            valid_loss,
            extra={"epoch": epoch, "valid_loss": valid_loss},  # JSON fields
        )
{%- else %}
        logger.info("epoch %d/%d valid_loss=%.4f", epoch, epochs, valid_loss)
{%- endif %}
        if valid_loss > best:
            logger.warning("Validation loss rose from %.4f to %.4f", best, valid_loss)
        best = min(best, valid_loss)
    logger.info("Fitted y = %.3fx + %.3f", model.weight, model.bias)
    return model
