"""A prefix of an S3-compatible bucket, with the conditional writes shared state needs.

The model registry and the training store live either in a local folder or under an
``s3://bucket/prefix`` URL; this is the narrow interface they use for the latter. It goes
through s3fs (fsspec) and its botocore client, so credentials come from the standard AWS
chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles) and
the endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``.

Every call is a plain S3 request (GET, HEAD, PUT, LIST, DELETE), never a cached listing:
several hosts write the same prefix, so what one wrote must be seen by the next read.
:meth:`ObjectStore.create` (``If-None-Match: *``) and :meth:`ObjectStore.replace`
(``If-Match: <etag>``) are the only ways two writers are kept apart: S3 evaluates the
condition and the write as one step and answers 412 to the loser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streams.errors import FraudError

SCHEME = "s3://"
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class ObjectStoreError(FraudError):
    """The object store refused or failed a request (credentials, bucket, network)."""


def is_object_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEME)


@dataclass(frozen=True)
class Tagged:
    """An object's bytes with the ETag they were read at (the handle of a conditional
    replace)."""

    data: bytes
    etag: str


class ObjectStore:
    """Objects under ``s3://bucket/prefix``; names are relative to the prefix."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        if not is_object_url(url):
            raise ObjectStoreError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ObjectStoreError(f"no bucket in {url!r}")
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """The s3fs filesystem, made on first use (an instance per store: a process that
        forks or spawns builds its own)."""
        if self._fs is None:
            import s3fs

            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.endpoint_url, skip_instance_cache=True, use_listings_cache=False
            )
        return self._fs

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    # -- reading ------------------------------------------------------------------------
    def read(self, name: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when there is none."""
        tagged = self.read_tagged(name)
        if tagged is None:
            raise FileNotFoundError(f"{self.url}/{name}")
        return tagged.data

    def read_tagged(self, name: str) -> Tagged | None:
        reply = self._call("get_object", name, missing_ok=True)
        if reply is None:
            return None
        return Tagged(_read_body(self.fs, reply["Body"]), str(reply["ETag"]))

    def etag(self, name: str) -> str | None:
        """The object's ETag from a HEAD request (None: no such object)."""
        reply = self._call("head_object", name, missing_ok=True)
        return None if reply is None else str(reply["ETag"])

    def exists(self, name: str) -> bool:
        return self.etag(name) is not None

    def names(self, under: str = "") -> list[str]:
        """Every object name below ``under`` (relative to the prefix), sorted."""
        return sorted(self._list(under))

    def _list(self, under: str) -> Iterator[str]:
        base = self.key("")
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key(under)}
        while True:
            reply = self._raw("list_objects_v2", **kwargs)
            for item in reply.get("Contents", []):
                yield str(item["Key"])[len(base) :]
            token = reply.get("NextContinuationToken")
            if not reply.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    # -- writing ------------------------------------------------------------------------
    def write(self, name: str, data: bytes) -> str:
        """Put the object whatever is there; returns its ETag."""
        reply = self._call("put_object", name, Body=data)
        return str(reply["ETag"])

    def create(self, name: str, data: bytes) -> str | None:
        """Put the object only if none has that name (``If-None-Match: *``): its ETag, or
        None when another writer got there first."""
        return self._conditional(name, data, IfNoneMatch="*")

    def replace(self, name: str, data: bytes, etag: str) -> str | None:
        """Put the object only if it still has ``etag`` (``If-Match``): the new ETag, or
        None when another writer changed it since it was read."""
        return self._conditional(name, data, IfMatch=etag)

    def delete(self, name: str) -> None:
        self._call("delete_object", name, missing_ok=True)

    def _conditional(self, name: str, data: bytes, **condition: str) -> str | None:
        # 409 ConditionalRequestConflict means a concurrent conditional write to the same
        # key was in progress: S3 asks to retry, and the retry then meets the condition.
        for attempt in range(5):
            try:
                reply = self._raw(
                    "put_object", Bucket=self.bucket, Key=self.key(name), Body=data, **condition
                )
                return str(reply["ETag"])
            except ObjectStoreError as exc:
                code = exc.__cause__ and _code(exc.__cause__)
                if code in {"ConditionalRequestConflict", "409"} and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                if code in _CONFLICT_CODES:
                    return None
                raise
        return None  # pragma: no cover - the loop returns or raises

    # -- requests ------------------------------------------------------------------------
    def _call(self, method: str, name: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            return self._raw(method, Bucket=self.bucket, Key=self.key(name), **kwargs)
        except ObjectStoreError as exc:
            if missing_ok and exc.__cause__ is not None and _code(exc.__cause__) in _MISSING_CODES:
                return None
            raise

    def _raw(self, method: str, **kwargs: Any) -> Any:
        try:
            return self.fs.call_s3(method, **kwargs)
        except Exception as exc:  # s3fs translates botocore errors into OSError kinds
            cause = _client_error(exc)
            code = _code(cause) if cause is not None else None
            raise ObjectStoreError(
                f"{method} {self.bucket}/{kwargs.get('Key', kwargs.get('Prefix', ''))}: "
                f"{code or type(exc).__name__}: {exc}"
            ) from (cause or exc)


def _client_error(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "response", None) is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    if code is None:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status) if status is not None else None
    return str(code)


def _read_body(fs: Any, body: Any) -> bytes:
    """The streamed body of a GET, read on s3fs's event loop."""
    from fsspec.asyn import sync

    async def read() -> bytes:
        async with body as stream:
            return bytes(await stream.read())

    return bytes(sync(fs.loop, read))
