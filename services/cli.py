"""``fraudctl``: the command line of the fraud-detection system.

Each area lives in its own module under :mod:`services.commands`; this file only mounts
them, so ``fraudctl --help`` is the table of contents of what an operator can do.
Benchmarks and load tests are tools, not the product: they live in ``loadtest/`` (which
the product never imports) and join the command line through the ``fraudctl.commands``
entry points when that package is installed (not in the runtime image).
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

from services.commands import (
    config,
    decisions,
    demo,
    dlq,
    erase,
    features,
    keys,
    model,
    produce,
    retrainer,
    review,
    schemas,
    serve,
    simulate,
    stack,
    topics,
    train,
)

PLUGIN_GROUP = "fraudctl.commands"

app = typer.Typer(
    name="fraudctl",
    help="Real-time streaming fraud detection: stack, simulator, features, models, services.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(config.app, name="config")
app.command("simulate")(simulate.simulate)
app.command("train")(train.train)
app.add_typer(features.app, name="features")
app.command("produce")(produce.produce)
app.add_typer(decisions.app, name="decisions")
app.add_typer(dlq.app, name="dlq")
app.add_typer(model.app, name="model")
app.command("retrain")(retrainer.retrain_once)
app.command("review")(review.review)
app.add_typer(serve.app, name="serve")
app.add_typer(keys.app, name="keys")
app.add_typer(schemas.app, name="schemas")
app.command("demo")(demo.demo)
app.command("erase")(erase.erase)


def mount_plugins(target: typer.Typer) -> list[str]:
    """Mount every ``fraudctl.commands`` entry point (a Typer app or a command function);
    one whose package is absent is left out. Returns the names mounted."""
    mounted = []
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            command = entry.load()
        except ImportError as exc:
            logging.getLogger("fraud.cli").debug("command %s not installed: %s", entry.name, exc)
            continue
        if isinstance(command, typer.Typer):
            target.add_typer(command, name=entry.name)
        else:
            target.command(entry.name)(command)
        mounted.append(entry.name)
    return mounted


mount_plugins(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
