"""``python -m services.scorer``: the scorer process (``fraudctl serve scorer`` execs this).

A process of its own imports only what scoring needs: the ``fraudctl`` command line loads
every command's modules (pandas among them, ~80 MB), which the scorer's 300 MB RSS budget
does not pay for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from services.scorer.service import main
from services.scorer.settings import ScorerSettings
from streams.errors import FraudError


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.scorer", description=__doc__)
    parser.add_argument("--instance-index", type=int, help="FRAUD_INSTANCE_INDEX")
    parser.add_argument("--metrics-port", type=int, help="FRAUD_METRICS_PORT")
    args = parser.parse_args(argv)
    given = {"instance_index": args.instance_index, "metrics_port": args.metrics_port}
    try:
        main(ScorerSettings(**{k: v for k, v in given.items() if v is not None}))
    except FraudError as exc:
        print(f"scorer cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
