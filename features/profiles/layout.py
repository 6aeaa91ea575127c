"""Feast's Redis online-store layout, spelled out for the direct reader and the writer.

Feast 0.49 (``feast/infra/online_stores/redis.py``) stores one Redis hash per entity:

* key: ``serialize_entity_key(EntityKey(join_keys=[k], entity_values=[v]), version)`` +
  project name. For one string join key and version 3 that is
  ``<u32 1><u32 STRING=2><u32 len(k)>k<u32 STRING=2><u32 len(v)>v`` + project (little endian);
* field per feature: ``mmh3_32(f"{view}:{feature}")`` as 4 little-endian bytes; value: a
  serialised ``feast.types.Value`` (Float32 -> tag ``0x35`` + 4 bytes float, 5 bytes);
* field ``_ts:{view}``: a serialised ``google.protobuf.Timestamp`` (``0x08`` + varint seconds).

:class:`FeastLayout` checks those assumptions against Feast's own functions when it is built,
so a Feast upgrade that changes them raises :class:`ProfileLayoutError` instead of serving
defaults; the integration parity test checks the rest against ``get_online_features``.
Processes that never import Feast otherwise (the scorer: the import costs ~140 MB of RSS)
build it with ``verify=False``; the tests verify the same layout against the pinned Feast.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from features.profiles.errors import ProfileLayoutError
from features.profiles.names import TERMINAL_JOIN_KEY, TERMINAL_RISK_FEATURES, TERMINAL_RISK_VIEW

FLOAT_TAG = 0x35  # Value.float_val: field 6, wire type 5 (fixed 32-bit)
TIMESTAMP_TAG = 0x08  # Timestamp.seconds: field 1, varint
VALUE_BYTES = 5


def field_hash(view: str, feature: str) -> bytes:
    """Feast's hash-field name of a feature (murmur3 32-bit, little endian), as Feast's
    ``helpers._mmh3`` computes it (checked against it by :meth:`FeastLayout.verify`)."""
    import mmh3

    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


def encode_float(value: float) -> bytes:
    return struct.pack("<Bf", FLOAT_TAG, value)


def encode_timestamp(seconds: int) -> bytes:
    out = bytearray([TIMESTAMP_TAG])
    n = int(seconds)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_timestamp(raw: bytes) -> int:
    """Seconds of a serialised ``Timestamp`` (nanos ignored, as Feast writes none)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.ParseFromString(raw)
    return int(ts.seconds)


def decode_value(raw: bytes | None) -> float | None:
    """A serialised ``Value`` as float (float/double/int kinds), ``None`` when unset."""
    if not raw:
        return None
    if len(raw) == VALUE_BYTES and raw[0] == FLOAT_TAG:
        return float(struct.unpack_from("<f", raw, 1)[0])
    from feast.protos.feast.types.Value_pb2 import Value

    value = Value()
    value.ParseFromString(raw)
    kind = value.WhichOneof("val")
    if kind in ("float_val", "double_val", "int32_val", "int64_val", "bool_val"):
        return float(getattr(value, kind))
    if kind in (None, "null_val"):
        return None
    raise ProfileLayoutError(f"unexpected Feast value kind {kind!r} in a numeric feature")


@dataclass(frozen=True)
class FeastLayout:
    """Key and field bytes of one feature view of one project in Feast's Redis layout."""

    project: str
    view: str = TERMINAL_RISK_VIEW
    join_key: str = TERMINAL_JOIN_KEY
    features: tuple[str, ...] = TERMINAL_RISK_FEATURES
    entity_key_serialization_version: int = 3
    verify_with_feast: bool = True
    key_prefix: bytes = field(init=False)
    key_suffix: bytes = field(init=False)
    feature_fields: tuple[bytes, ...] = field(init=False)
    ts_field: bytes = field(init=False)

    def __post_init__(self) -> None:
        if self.entity_key_serialization_version != 3:
            raise ProfileLayoutError("only entity_key_serialization_version 3 is supported")
        name = self.join_key.encode()
        prefix = struct.pack("<III", 1, 2, len(name)) + name + struct.pack("<I", 2)
        object.__setattr__(self, "key_prefix", prefix)
        object.__setattr__(self, "key_suffix", self.project.encode())
        object.__setattr__(
            self, "feature_fields", tuple(field_hash(self.view, f) for f in self.features)
        )
        object.__setattr__(self, "ts_field", f"_ts:{self.view}".encode())
        if self.verify_with_feast:
            self.verify()

    @property
    def generation_key(self) -> bytes:
        """Set to a new token by every writer of this view's rows once they are written
        (:mod:`features.profiles.cache`)."""
        return b"fraud:profiles:%s:%s:generation" % (self.project.encode(), self.view.encode())

    def entity_key(self, entity_id: str) -> bytes:
        raw = entity_id.encode()
        return self.key_prefix + struct.pack("<I", len(raw)) + raw + self.key_suffix

    def entity_keys(self, entity_ids: Sequence[str]) -> list[bytes]:
        prefix, suffix, pack = self.key_prefix, self.key_suffix, struct.Struct("<I").pack
        out = []
        for entity_id in entity_ids:
            raw = entity_id.encode()
            out.append(prefix + pack(len(raw)) + raw + suffix)
        return out

    def encode_row(self, values: np.ndarray, seconds: int) -> dict[bytes, bytes]:
        """Hash fields of one entity row (float32 values in feature order)."""
        row = {f: encode_float(float(v)) for f, v in zip(self.feature_fields, values, strict=True)}
        row[self.ts_field] = encode_timestamp(seconds)
        return row

    def verify(self) -> None:
        """Raise :class:`ProfileLayoutError` if Feast's own functions disagree with this
        layout (keys, field hashes, value and timestamp encodings)."""
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        for sample in ("T1", "terminal-00042"):
            key = EntityKey(join_keys=[self.join_key], entity_values=[Value(string_val=sample)])
            theirs = _redis_key(self.project, key, entity_key_serialization_version=3)
            if theirs != self.entity_key(sample):
                raise ProfileLayoutError(f"Feast entity key layout changed: {theirs!r}")
        for feature, ours in zip(self.features, self.feature_fields, strict=True):
            if bytes(_mmh3(f"{self.view}:{feature}")) != ours:
                raise ProfileLayoutError(f"Feast field hash of {feature} changed")
        if Value(float_val=0.5).SerializeToString() != encode_float(0.5):
            raise ProfileLayoutError("Feast float value encoding changed")
        if decode_timestamp(encode_timestamp(1_700_000_000)) != 1_700_000_000:
            raise ProfileLayoutError("protobuf Timestamp encoding changed")
