"""Entry point: a small training run that shows where the logs go."""

from __future__ import annotations

import argparse
import logging
import time

from .config import add_run_info, run_context, setup_logging
from .data import make_dataset, split
from .logging_infra import runs
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
    add_run_info(args=vars(args))  # in the run record and its summary line
    log_dir = setup_logging()
    run_id = run_context().run_id
    started = time.perf_counter()
    logger.info(runs.summary())
    if log_dir is not None:
        logger.info("Writing logs to %s", log_dir)

    status = 1  # unless the run gets to its end
    try:
        status = run(args)
    finally:  # also when an exception escapes: it is logged with its traceback next
        seconds = time.perf_counter() - started
        if status == 0:
            logger.info("Run %s finished in %.2fs", run_id, seconds)
        else:
            logger.error("Run %s failed after %.2fs", run_id, seconds)
        if log_dir is not None:
            logger.info("Logs are in %s", log_dir)
        runs.end(status)  # end time, status and exit code into the run record
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
