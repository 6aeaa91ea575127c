"""Feature layer: one registry of definitions, real-time Redis state, offline builder.

Never imports Kafka or services. The scorer uses :class:`FeatureStore` (``RedisFeatureStore``
in production) and records :data:`FEATURE_SET_ID` with every decision.
"""

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID, FEATURES, LABEL_DELAY_DAYS
from features.errors import FeatureStoreUnavailable, TrainingDataError
from features.interface import (
    DefaultProfileReader,
    FeatureMatrix,
    FeatureStats,
    FeatureStore,
    ProfileReader,
    RowFlag,
)

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_SET_ID",
    "LABEL_DELAY_DAYS",
    "DefaultProfileReader",
    "FeatureMatrix",
    "FeatureStats",
    "FeatureStore",
    "FeatureStoreUnavailable",
    "ProfileReader",
    "RowFlag",
    "TrainingDataError",
]
