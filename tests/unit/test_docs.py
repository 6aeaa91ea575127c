"""The documentation tells the truth about the code: generated references are fresh (the
OpenAPI spec from the app object), examples decode with the real decoders, the README
stays short, and no file narrates how the project was developed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from services import docs
from streams.events import EVENT_TYPES, Transaction
from streams.serde import Rejection, transaction_decoder

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README_LIMIT = 12_000
PROSE = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "bench/results").glob("*.md")),
]
TECHNICAL_SESSION = re.compile(
    r"(session[._\s]?timeout|InferenceSession|ONNX (runtime )?session|HTTP session"
    r"|requests\.Session|consumer[- ]group session|group session|session fixture"
    r"|scope=\"session\")",
    re.IGNORECASE,
)
NARRATION = re.compile(
    r"tried and (dropped|refused|reverted)|\b(first|second|third|fourth|fifth|sixth|seventh"
    r"|eighth|ninth|tenth|eleventh|twelfth) session|this session|\bhelper agents?\b",
    re.IGNORECASE,
)


def test_generated_reference_pages_are_fresh() -> None:
    stale = [str(p.relative_to(ROOT)) for p in docs.stale()]
    assert stale == [], f"stale reference pages {stale}: run `make docs`"


def test_the_committed_openapi_spec_is_the_apps() -> None:
    committed = json.loads((docs.REFERENCE / "openapi.json").read_text())
    assert committed == docs.openapi_spec()
    paths = set(committed["paths"])
    assert {"/v1/score", "/v1/labels", "/v1/models/current", "/healthz", "/readyz"} <= paths
    assert "Transaction" in committed["components"]["schemas"]


def test_event_examples_are_events_the_decoders_accept() -> None:
    examples = docs.event_examples()
    assert set(examples) == set(EVENT_TYPES)
    for name, event in examples.items():
        decoded = msgspec.json.decode(msgspec.json.encode(event), type=EVENT_TYPES[name])
        assert decoded == event, name
    tx = transaction_decoder.decode(msgspec.json.encode(examples["transaction"]))
    assert isinstance(tx, Transaction)


def json_lines_in(page: Path) -> list[str]:
    blocks = re.findall(r"```json\n(.*?)```", page.read_text(), re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("{")]


def test_the_example_messages_in_the_guides_are_valid_transactions() -> None:
    found = 0
    for page in ("guides/own-data.md", "guides/produce.md"):
        for line in json_lines_in(ROOT / "docs" / page):
            result = transaction_decoder.decode(line.encode())
            assert not isinstance(result, Rejection), f"{page}: {result}"
            found += 1
    readme = json_lines_in(ROOT / "README.md")
    for line in readme:
        assert isinstance(transaction_decoder.decode(line.encode()), Transaction), line
    assert found >= 2 and readme


def test_the_readme_is_short() -> None:
    size = len((ROOT / "README.md").read_text())
    assert size <= README_LIMIT, f"README.md is {size:,} characters (limit {README_LIMIT:,})"


def test_no_file_narrates_how_the_project_was_developed() -> None:
    problems = []
    for path in PROSE:
        text = path.read_text()
        for match in re.finditer(r"sessions?", text, re.IGNORECASE):
            window = text[max(0, match.start() - 30) : match.end() + 30]
            if not TECHNICAL_SESSION.search(window):
                problems.append(f"{path.relative_to(ROOT)}: ...{window!r}...")
        problems += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for m in NARRATION.finditer(text)]
    assert problems == []


def test_every_page_is_in_the_navigation() -> None:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda *_: None)  # mkdocs' !ENV and the like
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        return []

    listed = set(pages(config["nav"]))
    written = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert written == listed
