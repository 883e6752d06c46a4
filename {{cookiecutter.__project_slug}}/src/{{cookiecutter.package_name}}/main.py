"""Entry point: a small training run that shows where the logs go."""

from __future__ import annotations

import argparse
import logging

from .config import add_run_info, log_run_end, log_run_start, setup_logging
from .data import make_dataset, split
from .train import TrainingDiverged, train

logger = logging.getLogger(__name__)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="{{ cookiecutter.__project_slug }}",
        description="Train a toy linear model and log the run.",
    )
    parser.add_argument("--epochs", type=positive_int, default=5)
    parser.add_argument("--samples", type=positive_int, default=200)
    parser.add_argument(
        "--lr",
        type=float,
        default=0.005,
        help="learning rate (a large one, e.g. 5, diverges and is logged as an error)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    add_run_info(args=vars(args))  # in the run record (run.json) and the log files
    setup_logging()
    log_run_start()  # the console names the run and its log directory

    status = 1  # unless the run gets to its end
    try:
        status = run(args)
    finally:  # also on Ctrl+C or an exception, which is logged with its traceback
        log_run_end(status)  # finished, failed or interrupted, and after how long
    return status


def run(args: argparse.Namespace) -> int:
    """Train on a toy data set; return the exit status."""
    train_set, valid_set = split(make_dataset(args.samples, seed=args.seed))
    try:
        train(train_set, valid_set, epochs=args.epochs, lr=args.lr)
    except TrainingDiverged as error:
        logger.error("Training diverged: %s; try a smaller --lr", error)
        return 1
    return 0
