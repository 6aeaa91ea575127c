"""The fault suite's summary as a markdown table: ``python -m tests.faults.report FILE``.

FILE is the JSON the suite writes (``FRAUD_FAULTS_REPORT``): one object per case.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    ("fault", "fault"),
    ("transactions", "transactions"),
    ("decisions", "decisions"),
    ("duplicates", "duplicates"),
    ("lost", "lost"),
    ("review cases (dup / missing)", "review"),
    ("features ≠ reference", "features_differ"),
    ("offsets at end", "committed_to_end"),
    ("recovery (s)", "recovery_s"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "review":
        return f"{row['review_cases']:,} ({row['review_duplicates']} / {row['review_missing']})"
    value = row.get(key)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r, key) for _, key in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(markdown_table(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
