"""Write the docs' generated tables from the declarations they describe.

``python scripts/make_tables.py --write`` puts the options table (from the settings' own
declarations) between the ``options-table`` markers of docs/options.md, and the model table (from
the backends' declarations) between the ``model-table`` markers of docs/models.md; without
``--write`` it prints both. Tests fail when a page and its declarations disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.options import options_table  # noqa: E402
from operations.segmenters import model_table  # noqa: E402

# page → (marker, the table's maker)
TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "docs/options.md": ("options-table", options_table),
    "docs/models.md": ("model-table", model_table),
}


def between(text: str, marker: str) -> tuple[int, int]:
    """Where the table stands in ``text``: from after ``<!-- marker -->`` to its closing one."""
    start = text.index(f"<!-- {marker} -->\n") + len(f"<!-- {marker} -->\n")
    return start, text.index(f"<!-- /{marker} -->")


if __name__ == "__main__":
    for name, (marker, make) in TABLES.items():
        table = make()
        if "--write" not in sys.argv[1:]:
            print(table)
            continue
        page = ROOT / name
        text = page.read_text(encoding="utf-8")
        start, end = between(text, marker)
        page.write_text(text[:start] + table + text[end:], encoding="utf-8")
        print(f"wrote the {marker} into {page}", file=sys.stderr)
