"""Train a model; logging is configured by ``config.setup_logging()``."""
