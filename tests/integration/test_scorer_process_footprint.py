"""The scorer process as ``fraudctl serve scorer`` starts it: what it refuses, what it loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import FRAUDCTL, ROOT

pytestmark = pytest.mark.integration


def test_scorer_without_a_champion_refuses_to_start_and_says_why(
    tmp_path: Path, redis_url: str
) -> None:
    env = {
        **os.environ,
        "FRAUD_STATE_DIR": str(tmp_path / "empty-state"),
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never reached: the champion is checked first
    }
    done = subprocess.run(
        [*FRAUDCTL, "serve", "scorer", "--metrics-port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "scorer cannot start" in done.stderr
    assert "no champion model" in done.stderr
    assert "fraudctl train" in done.stderr  # and how to get one


def test_scorer_modules_load_neither_pandas_nor_feast_nor_sklearn() -> None:
    """LightGBM, the Feast layout reader and the pipeline without their heavy neighbours
    (they would cost the scorer ~250 MB of its 300 MB RSS budget), nor the ONNX exporter
    (onnx and onnxmltools, ~7 MB: a scorer loads models, it never converts one)."""
    heavy = "('pandas', 'sklearn', 'feast', 'pyarrow', 'onnx', 'onnxmltools')"
    probe = (
        "import sys, services.scorer.service, services.scorer.wiring; "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lightgbm_imported_lean_leaves_pandas_importable_afterwards() -> None:
    probe = (
        "import sys; from models.lgb import lgb; "
        "assert 'pandas' not in sys.modules and 'sklearn' not in sys.modules; "
        "import pandas, sklearn; print(lgb.Booster.__name__, pandas.DataFrame.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Booster", "DataFrame"]
