"""The sink's blocking calls on one thread of their own, awaited from faust's event loop.

Parquet writes and Redis retries take milliseconds to seconds; on the event loop they
would stall every agent, the timers and the consumer's heartbeats with them. One thread
keeps the sink's calls in order (the training store has one writer) and the loop free.

At-least-once is kept: an agent awaits the call before it asks for its next batch, and
faust acknowledges a batch only then. Two exits need care, because faust acknowledges
the events of a ``take()`` batch when the stream is torn down even if the agent never
finished with them:

* the agent is cancelled (the worker stops) while a call runs: the sink is told to stop
  retrying and the call is waited for on the spot; if it finished, the batch is safe;
* the call failed (a sink gave up at shutdown, or a bug): the batch is not written, so
  the process exits at once (``os._exit``), before faust can commit its offsets; the
  batch is replayed at the next start, which the join and the sink tolerate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("fraud.feedback")
T = TypeVar("T")
EXIT_UNWRITTEN = 75  # EX_TEMPFAIL: restart me, nothing was committed


class Offload:
    def __init__(self, on_cancel: Callable[[], None], *, exit: Callable[[int], None] = os._exit):
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sink")
        self._on_cancel = on_cancel
        self._exit = exit
        self.calls = 0
        """Sink calls under way (the stall watch does not count a stream waiting on one)."""

    async def run(
        self,
        what: str,
        call: Callable[..., T],
        *args: object,
        then: Callable[[T], None] | None = None,
    ) -> T:
        """``call(*args)`` on the sink's thread; ``then(result)`` on the loop, also when the
        agent was cancelled meanwhile (what the result says must not be dropped)."""
        future = self._executor.submit(call, *args)
        self.calls += 1  # on the loop's thread only, like the decrement below
        try:
            result = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self._on_cancel()
            done = self._result_or_exit(what, future)
            if then is not None and done is not None:
                then(done[0])
            raise
        except Exception as exc:
            self._unwritten(what, exc)
            raise
        finally:
            self.calls -= 1
        if then is not None:
            then(result)
        return result

    def _result_or_exit(self, what: str, future: concurrent.futures.Future[T]) -> tuple[T] | None:
        try:
            return (future.result(),)
        except Exception as exc:
            self._unwritten(what, exc)
            return None

    def _unwritten(self, what: str, exc: BaseException) -> None:
        log.critical(
            "stage=sink %s not done (%s: %s): exiting before the batch can be committed; "
            "it is replayed at the next start",
            what,
            type(exc).__name__,
            exc,
        )
        logging.shutdown()
        self._exit(EXIT_UNWRITTEN)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
