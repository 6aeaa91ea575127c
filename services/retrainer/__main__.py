"""``python -m services.retrainer [--once [--shuffle-labels]]``: the service, or one run.

The same code as ``fraudctl serve retrainer`` and ``fraudctl retrain --once``.
"""

import sys

import typer

from services.commands.retrainer import retrain_once, retrainer

if "--once" in sys.argv:
    typer.run(retrain_once)
else:
    typer.run(retrainer)
