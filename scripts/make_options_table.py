"""Print the README's options table from the settings' own declarations.

``python scripts/make_options_table.py --write`` puts it between the README's ``options-table``
markers (without ``--write`` it is printed); a test fails when the README and the declarations
disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operations.options import options_table  # noqa: E402

START, END = "<!-- options-table -->\n", "<!-- /options-table -->"

if __name__ == "__main__":
    table = options_table()
    if "--write" not in sys.argv[1:]:
        print(table, end="")
        sys.exit(0)
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    readme.write_text(text[:start] + table + text[end:])
    print(f"wrote the options table into {readme}", file=sys.stderr)
