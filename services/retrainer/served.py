"""The served log: a bounded, time-ordered memory of recent decisions and their features.

Fed from ``transactions.scored``; the drift window is its tail, and with the labels of the
training store it gives the labelled served rows the quality monitor and the challenger use.
Memory is bounded by ``capacity`` rows (oldest chunks are dropped first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from streams.events import Decision


@dataclass(frozen=True)
class ServedChunk:
    transaction_id: np.ndarray  # object (str)
    event_time_us: np.ndarray  # int64
    card_id: np.ndarray
    terminal_id: np.ndarray
    amount: np.ndarray  # float64
    score: np.ndarray  # float64
    decision: np.ndarray  # object (str)
    model_version: np.ndarray  # object (str)
    features: np.ndarray  # float32 (n, n_features)

    def __len__(self) -> int:
        return len(self.score)

    @classmethod
    def from_decisions(cls, decisions: Sequence[Decision], width: int) -> ServedChunk:
        rows = [d for d in decisions if len(d.features) == width]
        matrix = np.asarray([d.features for d in rows], dtype=np.float32).reshape(-1, width)
        return cls(
            np.array([d.transaction_id for d in rows], dtype=object),
            np.array([int(d.event_time.timestamp() * 1e6) for d in rows], dtype=np.int64),
            np.array([d.card_id for d in rows], dtype=object),
            np.array([d.terminal_id for d in rows], dtype=object),
            np.array([d.amount for d in rows], dtype=np.float64),
            np.array([d.score for d in rows], dtype=np.float64),
            np.array([d.decision for d in rows], dtype=object),
            np.array([d.model_version for d in rows], dtype=object),
            matrix,
        )


class ServedLog:
    def __init__(self, feature_names: Sequence[str], capacity: int) -> None:
        self.feature_names = tuple(feature_names)
        self.capacity = int(capacity)
        self._chunks: deque[ServedChunk] = deque()
        self._rows = 0
        self.seen = 0  # every row ever appended (drives "check every N rows")
        self.skipped = 0  # decisions whose vector does not match the feature set

    def __len__(self) -> int:
        return self._rows

    def append(self, decisions: Sequence[Decision]) -> int:
        chunk = ServedChunk.from_decisions(decisions, len(self.feature_names))
        self.skipped += len(decisions) - len(chunk)
        if len(chunk):
            self._chunks.append(chunk)
            self._rows += len(chunk)
            self.seen += len(chunk)
        while self._chunks and self._rows - len(self._chunks[0]) >= self.capacity:
            self._rows -= len(self._chunks.popleft())
        return len(chunk)

    def tail(self, n: int, model_version: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(features, scores) of the last ``n`` rows (served by ``model_version`` if given)."""
        feats: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        have = 0
        for chunk in reversed(self._chunks):
            mask = (
                chunk.model_version == model_version
                if model_version is not None
                else np.ones(len(chunk), dtype=bool)
            )
            feats.append(chunk.features[mask])
            scores.append(chunk.score[mask])
            have += int(mask.sum())
            if have >= n:
                break
        if not feats:
            return np.zeros((0, len(self.feature_names)), np.float32), np.zeros(0)
        x = np.concatenate(feats[::-1])[-n:]
        s = np.concatenate(scores[::-1])[-n:]
        return x, s

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(features, event times in µs) of the ``n`` rows with the latest event times: a
        backlog read from several partitions arrives out of time order, so :meth:`tail`'s
        last rows need not be the most recent."""
        if not self._chunks:
            return np.zeros((0, len(self.feature_names)), np.float32), np.zeros(0, np.int64)
        times = np.concatenate([c.event_time_us for c in self._chunks])
        keep = np.sort(np.argsort(times, kind="stable")[-n:])
        features = np.concatenate([c.features for c in self._chunks])
        return features[keep], times[keep]

    def frame(self) -> pd.DataFrame:
        """Every kept row, time-ordered as served: keys, score, decision, version, features."""
        if not self._chunks:
            columns = [
                "transaction_id",
                "event_time",
                "card_id",
                "terminal_id",
                "amount",
                "score",
                "decision",
                "model_version",
                *self.feature_names,
            ]
            return pd.DataFrame(columns=columns)
        chunks = list(self._chunks)

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(c, name) for c in chunks])

        frame = pd.DataFrame(
            {
                "transaction_id": cat("transaction_id"),
                "event_time": pd.to_datetime(cat("event_time_us"), unit="us", utc=True),
                "card_id": cat("card_id"),
                "terminal_id": cat("terminal_id"),
                "amount": cat("amount"),
                "score": cat("score"),
                "decision": cat("decision"),
                "model_version": cat("model_version"),
            }
        )
        features = pd.DataFrame(
            cat("features").astype(np.float64), columns=list(self.feature_names)
        )
        return pd.concat([frame, features], axis=1)
