"""Print the README's model table from the backends' own declarations.

``python scripts/make_model_table.py`` → paste between the README's ``model-table`` markers
(a test fails when the README and the declarations disagree).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from operations.segmenters import model_table

if __name__ == "__main__":
    print(model_table(), end="")
