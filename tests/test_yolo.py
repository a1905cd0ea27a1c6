"""YOLOv8-seg: a real-format checkpoint written by Ultralytics, loaded through its weights folder;
the soft-mask maths on controlled prototypes; the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operations.media.decode import decode
from operations.media.files import ImageError
from operations.segmenters.base import SegmenterError
from tests.helpers import SAMPLES, cli, installed

# Found, not imported: importing Ultralytics here, before the backend's own guarded import,
# would leave its process-wide PIL.Image.open wrapper in place (which a test below checks).
if not installed("torch", "ultralytics"):
    pytest.skip("the torch extra is not installed", allow_module_level=True)
import torch


def test_soft_union_of_instances() -> None:
    from operations.segmenters.yolo import soft_union

    masks = np.zeros((2, 4, 4), np.float32)
    masks[0, :2] = 0.9
    masks[1, 1:3] = 0.6
    union = soft_union(masks)
    assert union[0, 0] == pytest.approx(0.9) and union[2, 0] == pytest.approx(0.6)
    assert union[1, 0] == pytest.approx(0.9) and union[3, 0] == 0.0
    assert soft_union(np.zeros((0, 3, 5), np.float32)).shape == (3, 5)


def test_yolo_masks_are_soft_unletterboxed_and_at_the_photo_size(yolo_weights: Path) -> None:
    from operations.segmenters.yolo import _soft_predictor_class

    predictor = _soft_predictor_class().__new__(_soft_predictor_class())
    predictor.model = type("M", (), {"names": {0: "person", 1: "dog"}})()
    # A 640×480 photo letterboxed to 640×480 (no padding needed) with 4×4 px prototypes: two
    # instances, each one prototype channel, each in its own box.
    proto = torch.zeros(2, 120, 160)
    proto[0] = 4.0  # instance 0: logit 4 → 0.982 inside its box
    proto[1] = 0.0  # instance 1: logit 0 → 0.5 inside its box (soft, not thresholded away)
    pred = torch.tensor(
        [
            [0, 0, 320, 240, 0.9, 0, 1.0, 0.0],  # x1 y1 x2 y2 conf cls, then 2 coefficients
            [320, 240, 640, 480, 0.8, 1, 0.0, 1.0],
        ]
    )
    image = torch.zeros(1, 3, 480, 640)
    photo = np.zeros((960, 1280, 3), np.uint8)  # the original is twice the network's input
    result = predictor.construct_result(pred.clone(), image, photo, "x.jpg", proto)
    masks = result.masks.data.numpy()
    assert masks.shape == (2, 960, 1280)
    assert masks[0, 100, 100] == pytest.approx(0.982, abs=0.01)
    assert masks[1, 900, 1200] == pytest.approx(0.5, abs=0.01)  # soft values survive
    assert masks[0, 900, 1200] == 0.0 and masks[1, 100, 100] == 0.0  # cropped to their boxes
    np.testing.assert_allclose(result.boxes.xyxy[0].numpy(), [0, 0, 640, 480], atol=1)


def test_yolo_loads_a_real_format_checkpoint_and_leaves_pillow_alone(yolo_weights, tmp_path):
    from operations.segmenters.yolo import YoloSegmenter

    segmenter = YoloSegmenter("n", offline=True, device="cpu", confidence=0.01)
    assert segmenter.names[0] == "person" and len(segmenter.names) == 80
    rgb = decode(SAMPLES / "grace_hopper.jpg").rgb
    masks = segmenter.instance_masks(rgb)
    assert masks.ndim == 3 and masks.shape[1:] == rgb.shape[:2] and masks.shape[0] > 0
    alpha = segmenter.predict(rgb)
    assert alpha.shape == rgb.shape[:2] and alpha.min() >= 0 and alpha.max() <= 1
    # Importing Ultralytics must not leave its pip-installing PIL.Image.open wrapper behind.
    assert Image.open.__module__ == "PIL.Image"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        decode(text)
    with pytest.raises(SegmenterError, match=r"unknown class 'unicorn'.*person"):
        YoloSegmenter("n", offline=True, device="cpu", classes=["unicorn"])
    with pytest.raises(SegmenterError, match="choose n, s, m, l, x"):
        YoloSegmenter(str(tmp_path / "nope.pt"), device="cpu")


def test_cli_mode_2_end_to_end(yolo_weights: Path, photo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        out,
        "--blur",
        "--mode",
        "2",
        "--yolo-conf",
        "0.01",
        "--classes",
        "person,dog",
        "--summary",
        tmp_path / "s.json",
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "o2",
        "--blur",
        "--mode",
        "yolo",
        "--yolo-model",
        str(yolo_weights),
        "--overwrite",
    )
    assert code == 0, err


def test_ultralytics_settings_stay_in_our_folder_whatever_the_working_folder(tmp_path):
    """Importing Ultralytics writes a settings.json; never the user's global one."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    env = {k: v for k, v in os.environ.items() if k != "YOLO_CONFIG_DIR"}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        BACKGROUNDSWAP_HOME=str(tmp_path / "ours"),
        PYTHONPATH=str(ROOT),
    )
    code = (
        "from operations.segmenters.yolo import import_ultralytics, weights_spec\n"
        "import_ultralytics()\n"
        "print(weights_spec('s').cached)\n"
    )
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(tmp_path / "ours" / "models" / "yolov8s-seg.pt")
    assert not (tmp_path / "home" / ".config" / "Ultralytics").exists()
    assert not list(cwd.iterdir())  # nothing written where it was run


def test_an_onnx_detection_export_is_refused_by_its_metadata(tmp_path: Path, capsys) -> None:
    """Ultralytics' ONNX export of a detection model (not -seg) was taken for a -seg one and
    crashed at warm-up with a traceback (IndexError): its metadata says detect, and it is
    refused as the .pt form is, in one line, leaving no output folder."""
    pytest.importorskip("onnx")
    import os
    import shutil

    from ultralytics import YOLO

    here = os.getcwd()
    os.chdir(tmp_path)  # the export writes beside its source, a relative name
    try:
        exported = Path(YOLO("yolov8n.yaml").export(format="onnx", imgsz=64, verbose=False))
        detect = tmp_path / "detect.onnx"
        shutil.move(exported.resolve(), detect)
    finally:
        os.chdir(here)
    out = tmp_path / "out"
    code, err = cli(
        capsys, "-i", SAMPLES, "-o", out, "-b", "white", "--mode", "2", "--weights", detect
    )
    assert code == 2 and err.count("\n") == 1, err
    assert f"{detect} is a detect model (its ONNX metadata says so); a -seg model is needed" in err
    assert not out.exists()


def test_onnx_metadata_is_read_without_the_graph(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from operations.models import onnx_metadata

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [4096], [0.5] * 4096)],
    )
    model = helper.make_model(graph)
    helper.set_model_props(model, {"task": "segment", "names": "{0: 'person'}", "é": "ü"})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    assert onnx_metadata(path) == {"task": "segment", "names": "{0: 'person'}", "é": "ü"}
    path.write_bytes(path.read_bytes()[:40])  # cut inside the graph: whatever came before
    assert onnx_metadata(path) == {}
    assert onnx_metadata(tmp_path / "missing.onnx") == {}


def test_a_model_that_loads_but_cannot_run_is_one_line(yolo_weights, monkeypatch) -> None:
    from operations.segmenters import yolo

    def broken(self, rgb):
        raise IndexError("index 1 is out of bounds for dimension 0 with size 1")

    monkeypatch.setattr(yolo.YoloSegmenter, "instance_masks", broken)
    with pytest.raises(SegmenterError) as info:
        yolo.YoloSegmenter("n", offline=True)
    assert "loads but cannot run: IndexError: index 1 is out of bounds" in str(info.value)
    assert "\n" not in str(info.value)
