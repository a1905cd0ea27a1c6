"""The base class every segmentation backend implements, the batcher that lets concurrent calls
share one model call, and the declaration (:class:`Backend`) each backend module makes of its
name, options, devices and weights."""

from __future__ import annotations

import os
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from operations.errors import BackgroundSwapError, require

if TYPE_CHECKING:
    from pathlib import Path

    from operations.models import WeightsSpec


class SegmenterError(BackgroundSwapError, RuntimeError):
    """A segmenter could not be built (missing weights, unsupported device, …)."""


@dataclass(frozen=True)
class SegmenterSettings:
    """What a backend is built from: the settings every backend may read, and its own
    (``own``: its declared :class:`BackendOption` fields and their values, ``mp_model`` …)."""

    device: str = "auto"
    weights: Path | None = None  # a local weights file instead of the cache or a download
    offline: bool = False
    classes: tuple[str, ...] | None = None  # the class names that count as subject
    batch_size: int = 1  # images per model call
    own: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        weights = self.weights
        require(weights is None or os.path.isfile(weights), "weights", weights, "no such file")
        if self.classes is not None:
            shown = ",".join(self.classes)
            require(any(c.strip() for c in self.classes), "classes", shown, "give at least one")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "must be at least 1")

    def __getitem__(self, name: str) -> Any:
        """A backend's own setting, by field name (``settings["mp_model"]``)."""
        return dict(self.own)[name]


@dataclass(frozen=True)
class Pick:
    """The segmenter that segments one photo, and why it was chosen (``--mode auto``)."""

    segmenter: Segmenter
    reason: str | None = None

    def recorded(self) -> dict[str, str] | None:
        """What the summary records of the choice (``None``: there was none to make)."""
        if self.reason is None:
            return None
        return {"name": self.segmenter.name, "reason": self.reason}


class Segmenter(ABC):
    """Computes the subject's soft alpha for an RGB image.

    Built once per run (model loading is the expensive part), then :meth:`predict` is called for
    every image. Backends that are not safe to call from several threads at once set
    ``thread_safe = False``; :meth:`__call__` then serialises calls with a lock, so the batch runner
    can decode and encode other images in parallel while one image is being segmented.
    """

    name: ClassVar[str]
    thread_safe: ClassVar[bool] = False
    # The long side of the model's own mask, in pixels: how coarse its edges are once enlarged to
    # a photo's size (edge refinement sizes its search band from it).
    mask_side: int = 256
    # The mask's character: a coarse one (a people model's 256² blur, a class model's) is snapped
    # to the photo's edges; a fine one (a salient model's matte-like alpha, hair included) is
    # kept as it is, and only its soft pixels' colours are worked (operations.stages.matting).
    fine_mask: ClassVar[bool] = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batcher: _Batcher | None = None

    def enable_batching(self, size: int, wait: float = 0.01) -> None:
        """Let concurrent calls be answered together, up to ``size`` images per model call.

        Worth it on a GPU, where one call on a batch costs little more than on one image. The
        batch can only be as large as the number of threads calling at once (``--workers``).
        """
        self._batcher = _Batcher(self.predict_batch, size, wait) if size > 1 else None

    def pick(self, rgb: np.ndarray) -> Pick:
        """The segmenter for this photo: this one (a backend that chooses per photo, as
        ``--mode auto`` does, returns the one it chose, whose mask's character the edge stage
        then follows)."""
        return Pick(self)

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`predict` for several images; backends that can batch override this."""
        return [self.predict(image) for image in images]

    @abstractmethod
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Return the subject's alpha.

        Args:
            rgb: ``H×W×3`` ``uint8`` RGB image.

        Returns:
            ``H×W`` ``float32`` alpha in ``[0, 1]`` at the input's size (1 = subject).
        """

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: SegmenterSettings) -> Segmenter:
        """Build the backend from its settings."""

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self._batcher is not None:
            return self._batcher.submit(rgb)
        if self.thread_safe:
            return self.predict(rgb)
        with self._lock:
            return self.predict(rgb)

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to free
        """Release the model's resources. Idempotent."""

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batcher:
    """Collects concurrent requests into batches; whichever caller holds the model runs one.

    Each caller queues its image, then takes the model lock in turn; the holder takes up to
    ``size`` queued images (waiting up to ``wait`` seconds for more to arrive), runs them in one
    call and hands every caller its own result. A caller whose image was answered in someone
    else's batch returns without running the model.
    """

    def __init__(
        self, run: Callable[[list[np.ndarray]], list[np.ndarray]], size: int, wait: float
    ) -> None:
        self._run, self._size, self._wait = run, size, wait
        self._queue: queue.Queue[tuple[np.ndarray, Future[np.ndarray]]] = queue.Queue()
        self._lock = threading.Lock()

    def submit(self, image: np.ndarray) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        self._queue.put((image, future))
        while not future.done():
            with self._lock:
                if future.done():
                    break
                # Our image is still queued (only the lock holder takes from the queue).
                batch = [self._queue.get_nowait()]
                deadline = time.monotonic() + self._wait
                while len(batch) < self._size:
                    try:
                        batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                    except queue.Empty:
                        break
                try:
                    results = self._run([item for item, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every caller in the batch
                    for _, waiting in batch:
                        waiting.set_exception(exc)
                else:
                    for (_, waiting), result in zip(batch, results, strict=True):
                        waiting.set_result(result)
        return future.result()


@dataclass(frozen=True)
class BackendOption:
    """A setting a backend declares: it becomes an :class:`~operations.options.Options` field
    (named after the flag: ``--yolo-conf`` → ``yolo_conf``), a command-line flag, and an entry
    of :attr:`SegmenterSettings.own`.

    ``check`` returns why a value is invalid (``None`` when it is fine); ``choices`` are checked
    by the parser and by :meth:`Options.validated` alike.
    """

    flag: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    check: Callable[[Any], str | None] | None = None
    doc: str | None = None  # the options table's wording, if it says more than ``help``

    @property
    def field(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class ModelCard:
    """One row of docs/models.md's model table."""

    model: str  # what the user types (``--yolo-model s``), or a description
    weights: str  # the file, or where it comes from
    licence: str
    cache: str  # where the tool looks for it


@dataclass(frozen=True)
class Backend:
    """What a backend module declares about itself (as its module-level ``BACKEND``).

    The CLI's flags, :class:`~operations.options.Options`' fields and checks, the ``download``
    command and docs/models.md's model table are all read from these declarations.
    """

    name: str
    summary: str
    segmenter: type[Segmenter]
    alias: str | None = None  # the original tool's --mode number
    options: tuple[BackendOption, ...] = ()
    devices: tuple[str, ...] = ("cpu",)  # beside "auto", which picks the best of these
    classes: bool = False  # takes --classes (a class-aware model)
    # The backends it builds and runs (by name): it takes their own options too.
    uses: tuple[str, ...] = ()
    # The optional install it needs (requirements-EXTRA.txt, backgroundswap[EXTRA]) and the
    # modules that tell whether it is there; none for the core's own backend.
    extra: str | None = None
    requires: tuple[str, ...] = ()
    # download name → a function giving its WeightsSpec (the first is the backend's default;
    # functions, because building a spec may import the model's library).
    weights: dict[str, Callable[[], WeightsSpec]] = field(default_factory=dict)
    models: tuple[ModelCard, ...] = ()
