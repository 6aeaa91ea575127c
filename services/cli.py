"""``fraudctl``: the command line of the fraud-detection system.

Each area lives in its own module under :mod:`services.commands`; this file only mounts
them, so ``fraudctl --help`` is the table of contents of what an operator can do.
"""

from __future__ import annotations

import typer

from services.commands import (
    bench,
    demo,
    erase,
    features,
    keys,
    loadtest,
    model,
    retrainer,
    review,
    schemas,
    serve,
    simulate,
    stack,
    train,
)

app = typer.Typer(
    name="fraudctl",
    help="Real-time streaming fraud detection: stack, simulator, features, models, services.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(features.app, name="features")
app.add_typer(model.app, name="model")
app.add_typer(schemas.app, name="schemas")
app.add_typer(serve.app, name="serve")
app.add_typer(keys.app, name="keys")
app.command("simulate")(simulate.simulate)
app.command("train")(train.train)
app.command("retrain")(retrainer.retrain_once)
app.command("review")(review.review)
app.command("loadtest")(loadtest.loadtest)
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)
app.command("erase")(erase.erase)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
