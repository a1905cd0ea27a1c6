"""--mode auto: the people model for a photo with a person's face, the salient model for anything
else; the choice recorded per file, and the chosen model's mask treated as that model's."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from PIL import Image

from operations.batch import run_batch
from operations.build import build_pipeline
from operations.media.decode import decode
from operations.options import Options, OptionsError
from operations.segmenters import create_segmenter
from operations.segmenters.auto import AutoSegmenter, FaceFinder
from operations.segmenters.base import Segmenter, SegmenterSettings
from tests.helpers import ROOT, SAMPLES, DiscSegmenter, cli, make_clip, needs

CAT = ROOT / "tests" / "data" / "chelsea.jpg"  # scikit-image's Chelsea (CC0): no person in it
SETTINGS = SegmenterSettings(
    offline=True, own=(("mp_model", "general"), ("salient_model", "u2netp"))
)


class Flat(Segmenter):
    """A stand-in 'other' model: a flat answer, fine-mask character, counting its calls."""

    name: ClassVar[str] = "flat"
    fine_mask: ClassVar[bool] = True
    thread_safe: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: SegmenterSettings) -> Flat:
        return cls()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.full(rgb.shape[:2], 0.75, np.float32)


class Faces:
    """A stand-in face finder: the boxes it is given, for any photo; counts its calls and keeps
    the sizes of what it was shown (the reduced copy, the photo its faces are confirmed on)."""

    def __init__(self, *boxes: tuple[int, int, int, int]) -> None:
        self.boxes, self.calls, self.shown = list(boxes), 0, []

    def __call__(
        self, small: np.ndarray, photo: np.ndarray | None = None
    ) -> list[tuple[int, int, int, int]]:
        self.calls += 1
        self.shown.append((small.shape[:2], None if photo is None else photo.shape[:2]))
        return self.boxes

    def close(self) -> None:
        pass


def test_a_face_where_the_people_model_sees_a_person_chooses_the_people_model() -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)  # the disc (person) covers the centre
    centre = AutoSegmenter(DiscSegmenter(), Flat(), Faces((90, 40, 20, 20)))
    assert (centre.pick(rgb).segmenter.name, centre.pick(rgb).reason) == ("disc", "a face")
    # A face in a corner, where the people model sees no person (a poster, a label): not people.
    corner = AutoSegmenter(DiscSegmenter(), Flat(), Faces((0, 0, 12, 12)))
    assert (corner.pick(rgb).segmenter.name, corner.pick(rgb).reason) == ("flat", "no face")
    none = AutoSegmenter(DiscSegmenter(), Flat(), Faces())
    assert none.pick(rgb).segmenter.name == "flat"
    alone = AutoSegmenter(DiscSegmenter(), None, None)
    assert (alone.pick(rgb).segmenter.name, alone.pick(rgb).reason) == (
        "disc",
        "salient not installed",
    )


def test_faces_are_looked_for_on_a_reduced_copy_in_its_own_pixels() -> None:
    faces = Faces((300, 150, 40, 40))  # in the 640-px copy: its centre is (320, 170)
    people = DiscSegmenter()
    auto = AutoSegmenter(people, Flat(), faces)
    rgb = np.zeros((1000, 2000, 3), np.uint8)
    assert auto.pick(rgb).segmenter is people
    assert faces.calls == 1
    assert faces.shown == [((320, 640), (1000, 2000))]  # confirmed on the photo itself


def test_the_face_finder_finds_the_astronauts_face_and_none_on_the_cat() -> None:
    finder = FaceFinder(offline=True)  # the models this package carries: no download
    try:
        (box,) = finder(decode(SAMPLES / "astronaut.jpg").rgb)
        x, y, w, h = box
        assert 150 < x + w / 2 < 290 and 60 < y + h / 2 < 200, box  # her face, 512×512 photo
        (box,) = finder(decode(SAMPLES / "grace_hopper.jpg").rgb)
        assert finder(decode(CAT).rgb) == []
        assert finder(np.zeros((64, 64, 3), np.uint8)) == []
    finally:
        finder.close()


class _Detected:
    """What MediaPipe's detector answers: a detection with a bounding box."""

    def __init__(self, x: int, y: int, w: int, h: int) -> None:
        box = type("Box", (), {"origin_x": x, "origin_y": y, "width": w, "height": h})()
        self.detections = [type("Detection", (), {"bounding_box": box})()]


def test_a_face_the_detector_finds_on_an_animal_is_not_confirmed(monkeypatch) -> None:
    """The full-range detector took a bear's and an Afghan hound's faces for people's (0.65):
    made to report one on the cat's face, the landmarker, on a crop around it, finds no
    person's face there; the astronaut's, reported the same way, is confirmed. (Without the
    confirmation, the cat went to the people model.)"""
    finder = FaceFinder(offline=True)
    try:
        cat = decode(CAT).rgb
        monkeypatch.setattr(finder, "_detector", type("D", (), {})())
        finder._detector.detect = lambda image: _Detected(110, 30, 260, 260)  # its face
        assert finder(cat) == []
        astronaut = decode(SAMPLES / "astronaut.jpg").rgb
        finder._detector.detect = lambda image: _Detected(170, 60, 110, 110)  # hers
        assert finder(astronaut) == [(170, 60, 110, 110)]
        # On the photo's own pixels when the copy the detector saw was reduced.
        large = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
        finder._detector.detect = lambda image: _Detected(170, 60, 110, 110)
        assert finder(astronaut, large) == [(170, 60, 110, 110)]
        auto = AutoSegmenter(DiscSegmenter(), Flat(), finder)
        finder._detector.detect = lambda image: _Detected(110, 30, 260, 260)
        assert (auto.pick(cat).segmenter.name, auto.pick(cat).reason) == ("flat", "no face")
    finally:
        finder.close()


def test_the_chosen_models_mask_character_drives_the_edge_stage(tmp_path: Path) -> None:
    """The matte of a photo sent to the fine-mask model keeps that model's alpha (the fine
    path), exactly as a run of that model alone would make it."""
    rgb = decode(CAT).rgb
    auto = build_pipeline(
        Options(bg="white").recipe(), segmenter=AutoSegmenter(DiscSegmenter(), Flat(), Faces())
    )
    alone = build_pipeline(Options(bg="white").recipe(), segmenter=Flat())
    picked, direct = auto.swap(rgb), alone.swap(rgb)
    assert picked.extra["segmenter"] == {"name": "flat", "reason": "no face"}
    assert "segmenter" not in direct.extra
    np.testing.assert_array_equal(picked.alpha, direct.alpha)
    np.testing.assert_array_equal(picked.image, direct.image)


def test_a_video_is_judged_once_on_its_first_frame(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    make_clip(source / "clip.mp4", frames=6, audio=False)
    faces = Faces()
    other = Flat()
    options = Options(input=source, output=tmp_path / "out", bg="white").validated()
    pipeline = build_pipeline(
        options.recipe(), segmenter=AutoSegmenter(DiscSegmenter(), other, faces)
    )
    batch = run_batch(options, pipeline=pipeline, progress=False)
    (row,) = batch.files
    assert row.status == "ok", row.error
    assert row.extra["segmenter"] == {"name": "flat", "reason": "no face"}
    assert faces.calls == 1 and other.calls == 6


def test_options_take_both_models_settings_and_refuse_the_rest(tmp_path: Path) -> None:
    checked = Options(bg="white", mode="auto", salient_model="u2netp", mp_model="landscape")
    own = dict(checked.validated(batch=False).recipe().segmenter.own)
    assert own == {"mp_model": "landscape", "salient_model": "u2netp"}
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"x")
    refused = [
        ({"weights": weights}, "--weights"),  # which of its models would it be for?
        ({"yolo_conf": 0.5}, "--yolo-conf"),
        ({"classes": ["person"]}, "--classes"),
        ({"salient_model": "nonsense"}, "--salient-model"),
    ]
    for settings, flag in refused:
        with pytest.raises(OptionsError, match=flag):
            Options(bg="white", mode="auto", **settings).validated(batch=False)


def test_without_the_salient_extra_every_photo_goes_to_the_people_model(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a),
    )
    with caplog.at_level(logging.WARNING, logger="backgroundswap"):
        auto = create_segmenter("auto", SETTINGS)
    try:
        assert "requirements-salient.txt" in caplog.text
        pick = auto.pick(decode(CAT).rgb)
        assert (pick.segmenter.name, pick.reason) == ("mediapipe", "salient not installed")
    finally:
        auto.close()


@needs("onnxruntime")
def test_real_models_choose_people_for_the_astronaut_and_salient_for_the_cat(
    real_u2netp: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """End to end with the real U²-Netp: the choice is recorded in the summary and on the review
    page, and each photo's mask is the one its chosen backend gives when run alone."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "astronaut.jpg").write_bytes((SAMPLES / "astronaut.jpg").read_bytes())
    (source / "cat.jpg").write_bytes(CAT.read_bytes())
    common = ("-b", "white", "--offline", "--save-mask")
    small = ("--salient-model", "u2netp")
    code, err = cli(
        capsys,
        "-i",
        source,
        "-o",
        tmp_path / "auto",
        "--mode",
        "auto",
        *common,
        *small,
        "--summary",
        tmp_path / "s.json",
        "--report",
    )
    assert code == 0, err
    rows = {
        Path(r["input"]).name: r for r in json.loads((tmp_path / "s.json").read_text())["files"]
    }
    assert rows["astronaut.jpg"]["extra"]["segmenter"] == {"name": "mediapipe", "reason": "a face"}
    assert rows["cat.jpg"]["extra"]["segmenter"] == {"name": "salient", "reason": "no face"}
    page = (tmp_path / "auto" / "report.html").read_text()
    assert "model: salient (no face)" in page and "model: mediapipe (a face)" in page
    for mode, photo, own in (("mediapipe", "astronaut", ()), ("salient", "cat", small)):
        out = tmp_path / mode
        assert cli(capsys, "-i", source, "-o", out, "--mode", mode, *common, *own)[0] == 0
        alone = np.asarray(Image.open(out / f"{photo}.mask.png"))
        picked = np.asarray(Image.open(tmp_path / "auto" / f"{photo}.mask.png"))
        np.testing.assert_array_equal(picked, alone)
