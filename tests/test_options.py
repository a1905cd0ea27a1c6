"""Options: validation (each error names the option and its value), normalisation, and no side
effects."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from operations.options import Options, OptionsError
from tests.helpers import ROOT, SD, TORCH, installed, needs


def test_defaults_are_valid_and_mode_numbers_become_names() -> None:
    options = Options(blur=True).validated(batch=False)
    assert options.mode == "mediapipe"
    if installed("torch", "ultralytics"):
        assert Options(blur=True, mode="2").validated(batch=False).mode == "yolo"


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({"mode": "9"}, "--mode '9'"),
        ({"fit": "tile"}, "--fit 'tile'"),
        ({"matting": "best"}, "--matting 'best'"),
        ({"format": "gif"}, "--format 'gif'"),
        ({"device": "tpu"}, "--device 'tpu'"),
        ({"mp_model": "huge"}, "--mp-model 'huge'"),
        ({"deeplab_model": "vgg"}, "--deeplab-model 'vgg'"),
        ({"nst_optimizer": "sgd"}, "--nst-optimizer 'sgd'"),
        ({"engine": "spark"}, "--engine 'spark'"),
        ({"quality": 0}, "--quality '0'"),
        ({"yolo_conf": 1.5}, "--yolo-conf '1.5'"),
        ({"blur_strength": 0}, "--blur-strength '0'"),
        ({"workers": 0}, "--workers '0'"),
        ({"batch_size": 0}, "--batch-size '0'"),
        ({"nst_size": 8}, "--nst-size '8'"),
        ({"sd_steps": 0}, "--steps '0'"),
        ({"prompt": " "}, "--prompt ' '"),
        ({"bg_per_image": True}, "--bg-per-image"),
        ({"quiet": True, "verbose": True}, "--quiet"),
        ({"device": "cuda"}, "--device 'cuda'"),  # MediaPipe runs on the CPU only
        ({"classes": [" "]}, "--classes"),
    ],
)
def test_each_invalid_setting_names_its_option(settings: dict, option: str) -> None:
    with pytest.raises(OptionsError) as info:
        Options(blur=True, **settings).validated(batch=False)
    assert str(info.value).startswith(option), str(info.value)
    assert "\n" not in str(info.value)


def test_files_that_must_exist(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=r"^--bg .*no such file or folder"):
        Options(bg=tmp_path / "none.jpg").validated(batch=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionsError, match=r"^--bg .*the folder holds no files"):
        Options(bg=tmp_path / "empty").validated(batch=False)
    with pytest.raises(OptionsError, match=r"^--weights .*no such file"):
        Options(blur=True, weights=tmp_path / "w.pt").validated(batch=False)
    with pytest.raises(OptionsError, match=r"^--nst: needs a style image"):
        Options(nst=True).validated(batch=False)
    with pytest.raises(OptionsError, match=r"^--prompt .*not both"):
        (tmp_path / "bg.jpg").write_bytes(b"x")
        Options(prompt="a beach", bg=tmp_path / "bg.jpg").validated(batch=False)


def test_batch_checks_and_no_side_effects(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    with pytest.raises(OptionsError, match=r"^--bg: nothing to put behind"):
        Options(input=source, output=tmp_path / "out").validated()
    with pytest.raises(OptionsError, match=r"^--input .*no such file or folder"):
        Options(input=tmp_path / "none", output=tmp_path / "out", blur=True).validated()
    with pytest.raises(OptionsError, match=r"^--output .*is the input folder"):
        Options(input=source, output=source, blur=True).validated()
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OptionsError, match=r"^--output .*not a folder"):
        Options(input=source, output=tmp_path / "file", blur=True).validated()
    with pytest.raises(OptionsError, match=r"^--summary .*is a folder"):
        Options(input=source, output=tmp_path / "o", blur=True, summary=source).validated()
    checked = Options(input=str(source), output=str(tmp_path / "a" / "b"), blur=True).validated()
    assert checked.output == tmp_path / "a" / "b" and isinstance(checked.input, Path)
    assert not (tmp_path / "a").exists()  # validation checks; the run creates folders


def test_batch_size_raises_the_worker_count() -> None:
    options = Options(blur=True, batch_size=8, workers=2).validated(batch=False)
    assert options.workers == 8


def test_the_cli_sets_every_option_and_takes_its_defaults_from_options() -> None:
    import run

    args = run.build_parser().parse_args(["-i", "in", "-o", "out"])
    names = {f.name for f in fields(Options)}
    assert names <= set(vars(args)), names - set(vars(args))  # every setting has a flag
    defaults = Options()
    for name in names - {"input", "output"}:
        assert getattr(args, name) == getattr(defaults, name), name
    parsed = run.options_from_args(
        run.build_parser().parse_args(["-i", "in", "-o", "out", "--steps", "7", "--guidance", "2"])
    )
    assert parsed.sd_steps == 7 and parsed.sd_guidance == 2.0


@needs("torch", "ultralytics")
def test_backend_settings_follow_the_backends_declarations() -> None:
    options = Options(mode="yolo", yolo_conf=0.5, classes=["dog"]).validated(batch=False)
    assert options.yolo_conf == 0.5 and options.classes == ["dog"]
    with pytest.raises(OptionsError, match=r"^--classes 'dog': the mediapipe backend has no clas"):
        Options(blur=True, classes=["dog"]).validated(batch=False)
    with pytest.raises(OptionsError, match=r"^--yolo-conf '0.5': goes with --mode yolo"):
        Options(blur=True, yolo_conf=0.5).validated(batch=False)  # would be silently ignored
    with pytest.raises(OptionsError, match=r"^--device 'mps': nothing in this run can use it: the"):
        Options(blur=True, device="mps").validated(batch=False)
    assert Options(blur=True, mode="deeplab", device="cpu").validated(batch=False).device == "cpu"
    # The device is for the run's other models: MediaPipe stays on the CPU, the run goes on.
    prompted = Options(prompt="a beach", device="mps").validated(batch=False)
    assert prompted.device == "mps" and prompted.recipe().segmenter.device == "cpu"


@pytest.mark.parametrize(
    ("settings", "missing", "command"),
    [
        # Each with the extra's other packages installed, so the one taken away is the one named.
        pytest.param(
            {"mode": "deeplab"},
            "torch",
            "pip install -r requirements-torch.txt",
            marks=needs(*TORCH),
        ),
        pytest.param(
            {"mode": "yolo"},
            "ultralytics",
            "pip install -r requirements-torch.txt",
            marks=needs(*TORCH),
        ),
        ({"mode": "salient"}, "onnxruntime", "pip install -r requirements-salient.txt"),
        pytest.param(
            {"nst": True, "bg": "README.md"},
            "torch",
            "pip install -r requirements-torch.txt",
            marks=needs(*TORCH),
        ),
        pytest.param(
            {"prompt": "a beach"},
            "diffusers",
            "pip install -r requirements-sd.txt",
            marks=needs(*SD),
        ),
        ({"engine": "ray"}, "ray", "pip install -r requirements-ray.txt"),
    ],
)
def test_a_missing_extra_stops_at_once_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, settings: dict, missing: str, command: str
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    with pytest.raises(OptionsError, match=f"needs {missing}, which is not installed") as info:
        Options(blur=True, **settings).validated(batch=False)
    assert command in str(info.value) and "\n" not in str(info.value)
    # The package is not on PyPI: the alternative is the checkout's own extra.
    extra = command.split("requirements-")[1].split(".txt")[0]
    assert f"(or, from the checkout, pip install '.[{extra}]')" in str(info.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"blur": False, "bg": "README.md", "blur_strength": 3},
            "--blur-strength '3': goes with --blur",
        ),
        ({"fit": "contain"}, "--fit 'contain': goes with --bg or --prompt"),
        ({"quality": 80}, "--quality '80': goes with JPEG, WebP or AVIF output"),
        ({"nst_steps": 10}, "--nst-steps '10': goes with --nst"),
        ({"sd_steps": 5}, "--steps '5': goes with --prompt"),
        ({"seed": 3}, "--seed '3': goes with --prompt"),
        ({"cpus_per_worker": 2.0}, "--cpus-per-worker '2.0': goes with --engine ray"),
    ],
)
def test_options_that_would_be_silently_ignored_are_refused(settings: dict, message: str) -> None:
    settings = {"blur": True, **settings}
    with pytest.raises(OptionsError) as info:
        Options(**settings).validated(batch=False)
    assert str(info.value).startswith(message), str(info.value)


def test_weights_go_with_a_backend_that_has_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from operations import segmenters

    monkeypatch.setattr(segmenters, "BACKEND_MODULES", list(segmenters.BACKEND_MODULES))
    monkeypatch.setattr(segmenters, "_loaded", None)
    segmenters.register_backend("tests.helpers")  # the disc stand-in declares no weights
    with pytest.raises(OptionsError) as info:
        Options(blur=True, mode="7", weights="README.md").validated(batch=False)
    assert str(info.value).startswith("--weights 'README.md': goes with a backend with weights")
    # MediaPipe's model is resolved like every other: a local .tflite file may be given.
    assert (
        Options(blur=True, weights="README.md").validated(batch=False).weights.name == "README.md"
    )


@needs(*TORCH)
def test_the_same_options_are_fine_where_they_apply() -> None:
    Options(
        bg="README.md",
        blur=True,
        blur_strength=3,
        fit="contain",
        format="jpg",
        quality=80,
        nst=False,
    ).validated(batch=False)
    Options(bg="README.md", nst=True, nst_steps=10).validated(batch=False)


def test_the_docs_options_table_is_the_declarations() -> None:
    from operations.options import options_table
    from scripts.make_tables import between

    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    start, end = between(page, "options-table")
    assert page[start:end] == options_table(), "run python scripts/make_tables.py --write"
    flags = [line.split(" | ")[0] for line in options_table().splitlines()[2:]]
    assert "| `-i`, `--input DIR\\|PHOTO`" in flags and "| `--steps N`" in flags
    assert "| `--harmonize [STRENGTH]`" in flags and "| `--fit cover\\|contain\\|stretch`" in flags
