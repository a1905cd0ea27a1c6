"""One output folder under review: its run's settings and results, a preview of a photo's fix,
and an accepted fix written as the run would have written it.

The run is read back from its review page's ``results.json`` (the ``--summary`` rows, the run's
options and its working folder), so a redo is the same run: the same background, format, model,
side files and page. A fix is previewed on a reduced copy (the photo's long side at most
:data:`PREVIEW_SIDE`), and accepted at full resolution by the run's own photo job, which reads
the correction saved beside the outputs; so the result, its side files, its thumbnails, the
ledger and every later run agree.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from operations.batch import plan_jobs, result_row
from operations.build import build_pipeline
from operations.errors import BackgroundSwapError, SettingError, setting
from operations.jobs import corrections
from operations.jobs.corrections import Correction, CorrectionError
from operations.jobs.job import Job, PhotoJob
from operations.jobs.ledger import digest_bytes
from operations.jobs.report import PAGE_NAME, RESULTS_NAME, assets_folder, sort_key, write_page
from operations.media.decode import decode
from operations.media.files import printable, read_whole
from operations.media.png import encode_png
from operations.media.resize import shrink
from operations.options import Options, OptionsError
from operations.pipeline import Fix, Pipeline
from operations.segmenters import backends
from operations.stages.mask import MaskSettings, Stroke
from operations.stages.matting import MATTING_METHODS

PREVIEW_SIDE = 1024  # a preview's long side: the solver's working size, so nothing is lost
PHOTOS_KEPT = 4  # decoded photos (and their models' masks) kept for previews


class ReviewError(BackgroundSwapError):
    """What the review cannot do, said to the person asking (``status``: the HTTP answer)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Photo:
    """A photo being fixed: decoded once, reduced once, its models' masks kept per model."""

    digest: str
    mtime_ns: int
    rgb: np.ndarray
    alpha: np.ndarray | None
    small: np.ndarray
    small_alpha: np.ndarray | None
    masks: dict[str, np.ndarray]  # the model's mask of ``small``, per model

    @property
    def factor(self) -> float:
        return self.small.shape[1] / self.rgb.shape[1]


def _fix(body: dict[str, Any], width: int, height: int) -> Fix:
    """A request's fix, checked; a refusal names the request's field.

    Raises:
        ReviewError: a field of the wrong kind or out of range.
    """
    if not isinstance(body, dict):
        raise ReviewError("the body must be a JSON object")
    unknown = sorted(set(body) - {"strokes", "mode", "threshold", "grow", "feather", "matting",
                                  "revision"})  # fmt: skip
    if unknown:
        raise ReviewError(f"{unknown[0]}: not a field (strokes, mode, threshold, grow, feather, "
                          "matting, revision)")  # fmt: skip
    try:
        strokes = tuple(
            Stroke(
                str(s["kind"]),
                float(s["radius"]),
                tuple(_clipped(float(x), float(y), width, height) for x, y in s["points"]),
            )
            for s in body.get("strokes") or []
        )
        knobs = MaskSettings(
            threshold=None if body.get("threshold") is None else float(body["threshold"]),
            grow=int(body.get("grow") or 0),
            feather=float(body.get("feather") or 0.0),
        )
    except SettingError as exc:
        raise ReviewError(f"{exc.setting} {exc.value!r}: {exc.reason}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ReviewError(
            f"strokes: each is {{kind, radius, points: [[x, y], …]}} ({exc})"
        ) from None
    mode = body.get("mode") or None
    if mode is not None and mode not in backends():
        raise ReviewError(f"mode {mode!r}: choose from {', '.join(backends())}")
    matting = body.get("matting") or None
    if matting is not None and matting not in MATTING_METHODS:
        raise ReviewError(f"matting {matting!r}: choose from {', '.join(MATTING_METHODS)}")
    return Fix(mode, knobs, matting, strokes)


# Settings that may name a file or folder (a model's may be a name or a path; --bg a colour).
_PATHS = ("input", "output", "summary", "report", "bg", "masks", "nst_weights", "weights",
          "yolo_model", "salient_model", "sd_model")  # fmt: skip


def _relative_path(key: str, value: str, working: Path) -> bool:
    """A recorded setting that is a path relative to where the run ran, there."""
    return key in _PATHS and not Path(value).is_absolute() and (working / value).exists()


def _clipped(x: float, y: float, width: int, height: int) -> tuple[float, float]:
    """A stroke's point held to the photo (a brush dragged past its edge still paints it)."""
    return min(max(x, -1.0), width + 1.0), min(max(y, -1.0), height + 1.0)


class ReviewSession:
    """An output folder written with ``--report``, ready to preview and accept fixes.

    Raises:
        ReviewError: the folder holds no review data, or its run cannot be rebuilt here.
    """

    def __init__(self, output_folder: Path, *, page: Path | None = None) -> None:
        self.output_folder = Path(output_folder).resolve()
        self.page = page or self.output_folder / PAGE_NAME
        self.results_path = assets_folder(self.page) / RESULTS_NAME
        self._lock = threading.Lock()  # one accept at a time; previews run beside it
        self._photos: OrderedDict[str, _Photo] = OrderedDict()
        self._pipeline: Pipeline | None = None
        self._building = threading.Lock()
        self._read: int | None = None
        self.report: dict[str, Any] = {}
        self.options: Options  # set by refresh(), as the rows are
        self.rows: dict[str, dict] = {}
        self.working = Path.cwd()
        self.refresh()

    def refresh(self) -> None:
        """The run's results and settings as they are now: read again when a later run of the
        folder rewrote them (its settings, not the ones this server started with, redo a photo).

        Raises:
            ReviewError: the folder holds no review data, or its run cannot be redone here.
        """
        try:
            stamp = self.results_path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp is not None and stamp == self._read:
            return
        try:
            self.report = json.loads(self.results_path.read_bytes())
            rows = self.report["files"]
        except FileNotFoundError:
            raise ReviewError(
                f"{printable(self.output_folder)} holds no review data "
                f"({printable(self.results_path)}): run the batch with {setting('report')} to "
                "make it"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReviewError(
                f"{printable(self.results_path)} is not a run's results: {exc}"
            ) from None
        self.working = Path(self.report.get("working_folder") or Path.cwd())
        options = self._options(self.report)
        if self._read is not None and options != self.options:
            with self._building:  # another run's settings: its pipeline, built anew
                if self._pipeline is not None:
                    self._pipeline.close()
                self._pipeline = None
                self._photos.clear()
        self.options = options
        self.rows = {}
        for row in rows:
            name = self.name_of(row)
            if name is not None:
                self.rows[name] = row
        self._read = stamp

    def _options(self, report: dict) -> Options:
        """The run's options, as it ran them, less what only a batch does (summary, watching)."""
        recorded = dict(report.get("options") or {})
        working = self.working
        known = {f.name: f for f in dataclasses.fields(Options)}
        values: dict[str, Any] = {}
        for key, value in recorded.items():
            if key not in known:
                continue  # a backend that is not installed here: its own options
            if isinstance(value, str) and _relative_path(key, value, working):
                value = str(working / value)  # the run's relative paths start where it ran
            values[key] = tuple(value) if isinstance(value, list) else value
        values.update(watch=False, delete_input=False, summary=None, quiet=True, overwrite=True,
                      output=str(self.output_folder), report=str(self.page))  # fmt: skip
        try:
            return Options(**values).validated()
        except (OptionsError, TypeError) as exc:
            raise ReviewError(f"the run cannot be redone here: {exc}") from None

    def path_of(self, row: dict, key: str) -> Path:
        """A row's ``input`` or ``output``: a relative one is relative to where the run ran."""
        return self.working / row[key]

    def name_of(self, row: dict) -> str | None:
        """A result's name: its output's path inside the output folder (posix)."""
        if not row.get("output") or row.get("status") == "failed":
            return None
        try:
            return self.path_of(row, "output").resolve().relative_to(self.output_folder).as_posix()
        except ValueError:
            return None

    # What the page lists

    def listing(self) -> list[dict[str, Any]]:
        """Every result, in review order (doubtful first): name, input, output, doubt, flags,
        and whether it is corrected."""
        self.refresh()
        ordered = sorted(self.rows.items(), key=lambda item: sort_key(item[1]))
        return [self.describe(name) for name, _ in ordered]

    def describe(self, name: str) -> dict[str, Any]:
        row = self.row(name)
        chosen = (row.get("extra") or {}).get("segmenter")  # --mode auto's choice
        correction = self._correction(name)
        return {
            "name": name,
            "input": str(self.path_of(row, "input")),
            "output": str(self.path_of(row, "output")),
            "doubt": row.get("doubt"),
            "flags": row.get("flags") or [],
            "corrected": correction is not None,
            "revision": correction.revision if correction is not None else 0,
            "model": chosen["name"] if isinstance(chosen, dict) else self.options.mode,
        }

    def row(self, name: str) -> dict:
        """Raises: ReviewError (404): no result of this run has that name."""
        row = self.rows.get(name)
        if row is None:
            raise ReviewError(f"no result named {name!r} in this run", 404)
        return row

    def models(self) -> list[str]:
        """The models a fix may choose: the registered backends whose libraries are here."""
        return [
            name
            for name, backend in backends().items()
            if all(importlib.util.find_spec(m) is not None for m in backend.requires)
        ]

    # Preview and accept

    def pipeline(self) -> Pipeline:
        with self._building:
            if self._pipeline is None:
                self._pipeline = build_pipeline(self.options.recipe())
            return self._pipeline

    def _photo(self, name: str) -> _Photo:
        source = self.path_of(self.row(name), "input")
        try:
            data, read = read_whole(source)
        except BackgroundSwapError as exc:
            raise ReviewError(f"{printable(source)}: {exc}", 409) from None
        with self._building:
            kept = self._photos.get(name)
            if kept is not None and kept.mtime_ns == read.st_mtime_ns:
                self._photos.move_to_end(name)
                return kept
        decoded = decode(source, max_pixels=self.options.max_pixels, data=data)
        height, width = decoded.rgb.shape[:2]
        scale = min(1.0, PREVIEW_SIDE / max(height, width))
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        rgb = np.ascontiguousarray(decoded.rgb)
        small = shrink(rgb, w, h) if scale < 1 else rgb
        small_alpha = None
        if decoded.alpha is not None:
            small_alpha = shrink(decoded.alpha, w, h) if scale < 1 else decoded.alpha
        photo = _Photo(digest_bytes(data), read.st_mtime_ns, rgb, decoded.alpha, small,
                       small_alpha, {})  # fmt: skip
        with self._building:
            self._photos[name] = photo
            while len(self._photos) > PHOTOS_KEPT:
                self._photos.popitem(last=False)
        return photo

    def size(self, name: str) -> dict[str, int]:
        """The photo's size, upright: the editor's coordinates."""
        height, width = self._photo(name).rgb.shape[:2]
        return {"width": width, "height": height}

    def photo_jpeg(self, name: str) -> bytes:
        """The photo as decoded (upright, any format a browser cannot show made JPEG)."""
        buffer = io.BytesIO()
        Image.fromarray(self._photo(name).rgb).save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    def preview(self, name: str, body: dict[str, Any], *, view: str = "result") -> bytes:
        """The result with ``body``'s fix, on the photo reduced to :data:`PREVIEW_SIDE`: a PNG
        (``view="mask"``: its alpha, grey).

        Raises:
            ReviewError: a bad fix (400), no such result (404), an unreadable photo (409).
        """
        photo = self._photo(name)
        height, width = photo.rgb.shape[:2]
        fix = _fix(body, width, height).scaled(photo.factor)
        pipeline = self.pipeline()
        mode = fix.mode or self.options.mode
        if mode not in photo.masks:  # the model's mask of the reduced photo, once per model
            try:
                segmenter = pipeline.segmenter_for(mode)
            except BackgroundSwapError as exc:  # not installed here, or its weights missing
                raise ReviewError(f"mode {mode!r}: {exc}", 409) from None
            photo.masks[mode] = pipeline.segment(photo.small, segmenter.pick(photo.small).segmenter)
        result = pipeline.swap(
            photo.small, alpha_in=photo.small_alpha, fix=fix, model_mask=photo.masks[mode]
        )
        if view == "mask":
            return encode_png(np.clip(result.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8))
        return encode_png(result.image)

    def accept(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Keep ``body``'s fix and write the result at full resolution, whole or not at all.

        Raises:
            ReviewError: a bad fix (400), no such result (404), a photo changed since its result
                was made or a result being written by a batch (409), a fix accepted meanwhile
                in another browser (409, when ``revision`` says which one this one started from).
        """
        with self._lock:
            self.refresh()
            row = self.row(name)
            source, output = self.path_of(row, "input"), self.output_folder / name
            current = self._correction(name)
            revision = current.revision if current is not None else 0
            started = body.get("revision")
            if started is not None and started != revision:
                raise ReviewError(
                    f"{name} was corrected meanwhile (now revision {revision}, this page started "
                    f"from {started}): reload it to see that fix before changing it",
                    409,
                )
            data, read = read_whole(source)
            try:
                made = output.stat().st_mtime_ns
            except OSError:
                made = None
            if made is not None and read.st_mtime_ns > made:
                raise ReviewError(
                    f"{printable(source)} changed after its result was made: rerun the batch "
                    "on it before fixing it (the result would be of other content)",
                    409,
                )
            width, height = self._photo(name).rgb.shape[1::-1]
            fix = _fix(body, width, height)
            correction = Correction(fix, digest_bytes(data), revision + 1)
            previous = corrections.path_for(self.output_folder, output)
            kept = previous.read_bytes() if previous.is_file() else None
            corrections.save(self.output_folder, output, correction)
            result = self._redo(self._job(output))
            if result.status != "ok":  # nothing was written: the correction goes too
                self._restore(previous, kept)
                status = 409 if result.status == "skipped" else 500
                reason = result.error or "; ".join(result.warnings)
                raise ReviewError(f"{name} was not written: {reason}", status)
            self._record(name, result)
            return {**self.describe(name), "seconds": round(result.seconds, 3),
                    "warnings": result.warnings}  # fmt: skip

    def _job(self, output: Path) -> Job:
        for job in plan_jobs(self.options):
            if job.output.resolve() == output:
                if not isinstance(job, PhotoJob):
                    raise ReviewError(f"{output.name} is a video: only photos are fixed here")
                return dataclasses.replace(job, planned=time.time())
        raise ReviewError(f"{printable(output)}: its photo is no longer in the run's input", 409)

    def _redo(self, job: Job) -> Any:
        settings = self.options.engine_settings().jobs
        return job.process(self.pipeline(), dataclasses.replace(settings, overwrite=True))

    @staticmethod
    def _restore(path: Path, kept: bytes | None) -> None:
        if kept is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(kept)

    def _record(self, name: str, result: Any) -> None:
        """The result's new row in the run's results, and the page made again from them."""
        row = result_row(result)
        self.rows[name] = row
        files = [r if self.name_of(r) != name else row for r in self.report["files"]]
        self.report["files"] = files
        write_page(self.report, self.page, self.output_folder, earlier=False)

    def _correction(self, name: str) -> Correction | None:
        try:
            return corrections.load(self.output_folder, self.output_folder / name)
        except CorrectionError:
            return None

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()
