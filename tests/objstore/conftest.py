"""The object-storage tier: moto's S3 server on a free loopback port for the session.

Each test gets a bucket of its own; ``location`` runs a test twice, once on
``s3://<bucket>/<prefix>`` and once on a local folder, so both kinds of store keep the
same behaviour. Credentials are moto's dummies, set in the environment the way a real
deployment sets them (``AWS_ACCESS_KEY_ID`` ...), so child processes inherit them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.stack.process import free_port, port_open
from streams.object_store import ObjectStore

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)  # a developer's own AWS setup must not leak in
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while not port_open("127.0.0.1", port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@dataclass(frozen=True)
class Location:
    """Where a test's store lives: ``url`` is a folder path or an s3:// URL."""

    url: str
    endpoint_url: str | None
    cache_dir: Path

    @property
    def on_s3(self) -> bool:
        return self.url.startswith("s3://")


@pytest.fixture()
def bucket_url(s3_endpoint: str) -> str:
    name = f"t{uuid.uuid4().hex[:20]}"
    ObjectStore(f"s3://{name}", endpoint_url=s3_endpoint).fs.call_s3("create_bucket", Bucket=name)
    return f"s3://{name}/fraud"


@pytest.fixture(params=["s3", "folder"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "folder":
        return Location(str(tmp_path / "store"), None, tmp_path / "cache")
    endpoint = request.getfixturevalue("s3_endpoint")
    url = request.getfixturevalue("bucket_url")
    assert os.environ["AWS_ACCESS_KEY_ID"] == CREDENTIALS["AWS_ACCESS_KEY_ID"]
    return Location(url, endpoint, tmp_path / "cache")
