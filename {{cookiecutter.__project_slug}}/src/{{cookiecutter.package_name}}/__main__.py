"""Entry point of ``python -m``: runs the training demo."""

from .main import main

raise SystemExit(main())
