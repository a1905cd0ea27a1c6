"""A photo's correction, kept as data in its output folder: the model, knobs and strokes that
the review page's editor chose for it, and the photo it was made on.

One JSON file per result, ``OUTPUT/.backgroundswap/corrections/<output's name>.json``, written
whole under a temporary name and renamed into place. Every later run of that output folder
applies it (:class:`~operations.jobs.job.PhotoJob` reads it), so ``--overwrite`` reproduces a
fix instead of losing it; a photo whose bytes changed since (its BLAKE2b differs) is processed
as the run says, with a warning, because strokes drawn on another picture would be wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from operations.errors import BackgroundSwapError, SettingError
from operations.media.files import write_atomic
from operations.pipeline import Fix
from operations.stages.mask import MaskSettings, Stroke

FOLDER = Path(".backgroundswap") / "corrections"


class CorrectionError(BackgroundSwapError, ValueError):
    """A correction that cannot be read (a file edited by hand, or cut short)."""


@dataclass(frozen=True)
class Correction:
    """A result's correction: the photo's :class:`Fix`, the BLAKE2b of the photo's bytes it
    was drawn on, its revision (1, 2 … each accept) and when it was made."""

    fix: Fix
    digest: str
    revision: int = 1
    made: str = ""

    def summary(self) -> dict[str, Any]:
        """What a result's row says of the correction it was made with."""
        fix = self.fix
        return {
            "revision": self.revision,
            "made": self.made,
            "strokes": len(fix.strokes),
            **({"mode": fix.mode} if fix.mode else {}),
            **({"matting": fix.matting} if fix.matting else {}),
        }

    def to_json(self) -> dict[str, Any]:
        fix, knobs = self.fix, self.fix.mask or MaskSettings()
        return {
            "revision": self.revision,
            "made": self.made or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input_blake2b": self.digest,
            "mode": fix.mode,
            "matting": fix.matting,
            "threshold": knobs.threshold,
            "grow": knobs.grow,
            "feather": knobs.feather,
            "keep_alpha": knobs.keep_alpha,
            "knobs": fix.mask is not None,
            "strokes": [
                {"kind": s.kind, "radius": s.radius, "points": [list(p) for p in s.points]}
                for s in fix.strokes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Correction:
        """Raises: CorrectionError: not a correction."""
        try:
            knobs = None
            if data.get("knobs"):
                knobs = MaskSettings(
                    data.get("threshold"),
                    int(data.get("grow", 0)),
                    float(data.get("feather", 0.0)),
                    bool(data.get("keep_alpha", False)),
                )
            strokes = tuple(
                Stroke(
                    str(s["kind"]),
                    float(s["radius"]),
                    tuple((float(x), float(y)) for x, y in s["points"]),
                )
                for s in data.get("strokes", [])
            )
            fix = Fix(data.get("mode"), knobs, data.get("matting"), strokes)
            return cls(fix, str(data["input_blake2b"]), int(data["revision"]), str(data["made"]))
        except (KeyError, TypeError, ValueError, SettingError) as exc:
            raise CorrectionError(f"not a correction: {exc}") from None


def path_for(output_folder: Path, output: Path) -> Path:
    """Where the correction of ``output`` (a result in ``output_folder``) is kept."""
    relative = output.relative_to(output_folder)
    return output_folder / FOLDER / relative.parent / f"{relative.name}.json"


def load(output_folder: Path, output: Path) -> Correction | None:
    """The correction of ``output``, if it has one.

    Raises:
        CorrectionError: the file is there but is not a correction.
    """
    path = path_for(output_folder, output)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorrectionError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorrectionError(f"{path}: not a correction")
    return Correction.from_json(data)


def save(output_folder: Path, output: Path, correction: Correction) -> Path:
    """Keep ``correction`` for ``output``, whole or not at all."""
    path = path_for(output_folder, output)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(correction.to_json(), indent=1).encode()
    write_atomic(path, lambda f: f.write(data))
    return path
