"""Process plumbing shared by the long-running review modes (``--auto``, ``--chargebacks``):
logging, the metrics endpoint, and a stop flag set by SIGTERM / SIGINT.

The signal handlers are installed only on the main thread and restored on exit, so the
loops can also run inside a test process without taking over its signals.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from prometheus_client import start_http_server

from services.review.settings import ReviewSettings


@contextmanager
def service_run(settings: ReviewSettings) -> Iterator[threading.Event]:
    """Yield a stop event; SIGTERM / SIGINT set it (main thread only, restored after)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
