"""The command line, end to end, with the real MediaPipe model on the real sample photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import run
from tests.helpers import BACKGROUND, ROOT, SD, TORCH, cli, installed, needs, save_rgb


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _photos(folder: Path, count: int, height: int, width: int) -> Path:
    for i in range(count):
        save_rgb(folder / f"p{i:02d}.png", height, width, seed=i)
    return folder


def test_help_is_fast_and_imports_no_model_library() -> None:
    code = (
        "import sys, run\n"
        "try:\n    run.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = {'torch', 'mediapipe', 'diffusers', 'ultralytics', 'tqdm', 'onnxruntime',\n"
        "         'numba', 'ray'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--blur-strength" in result.stdout and "mediapipe" in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("backgroundswap 0.")


def test_end_to_end_on_the_samples(tmp_path: Path, photo_dir: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = cli(
        capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND, "--summary", tmp_path / "s.json"
    )
    assert code == 0, err
    assert _files(out) == ["astronaut.png", "grace_hopper.png"]
    assert "2 written, 0 skipped (output exists), 0 failed" in err
    result = np.asarray(Image.open(out / "astronaut.png"))
    photo = np.asarray(Image.open(photo_dir / "astronaut.jpg"))
    assert result.shape == photo.shape
    face = (slice(95, 145), slice(195, 245))
    assert np.abs(result[face].astype(int) - photo[face]).mean() < 2  # the subject stays
    assert np.abs(result[:40, :40].astype(int) - photo[:40, :40]).mean() > 40  # the wall is gone
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["counts"] == {"ok": 2, "skipped": 0, "failed": 0}
    entry = report["files"][0]
    assert set(entry) >= {"input", "output", "status", "seconds", "error"}
    assert entry["status"] == "ok" and entry["output"].endswith("astronaut.png")


def test_script_runs_as_a_program(tmp_path: Path, photo_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "run.py",
            "--input",
            photo_dir,
            "--output",
            tmp_path / "o",
            "--bg",
            BACKGROUND,
            "--mode",
            "mediapipe",
            "--format",
            "jpg",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet, and MediaPipe's native start-up chatter is hidden
    assert _files(tmp_path / "o") == ["astronaut.jpg", "grace_hopper.jpg"]
    assert Image.open(tmp_path / "o" / "astronaut.jpg").format == "JPEG"


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path, photo_dir, capsys) -> None:
    (photo_dir / "empty.jpg").write_bytes(b"")
    (photo_dir / "notes.txt").write_text("shopping list")
    good = save_rgb(tmp_path / "tmp.jpg", 64, 64)
    (photo_dir / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    out = tmp_path / "out"
    code, err = cli(
        capsys, "-i", photo_dir, "-o", out, "--bg", BACKGROUND, "--summary", tmp_path / "s.json"
    )
    assert code == 1
    assert _files(out) == ["astronaut.png", "grace_hopper.png"]
    lines = [line for line in err.splitlines() if line.startswith("failed")]
    assert len(lines) == 3
    assert any("empty.jpg: empty file" in line for line in lines)
    assert any("notes.txt: not an image" in line for line in lines)
    assert any("truncated.jpg: truncated (a copy not finished?)" in line for line in lines)
    assert "Traceback" not in err
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["counts"] == {"ok": 2, "skipped": 0, "failed": 3}
    assert {f["status"] for f in report["files"] if f["error"]} == {"failed"}


def test_resume_skips_existing_outputs_and_overwrite_redoes(tmp_path, photo_dir, capsys) -> None:
    out = tmp_path / "out"
    assert cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND)[0] == 0
    stamp = (out / "astronaut.png").stat().st_mtime_ns
    (out / "grace_hopper.png").unlink()  # as if the first run had been killed before it
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND)
    assert code == 0 and "1 written, 1 skipped" in err
    assert (out / "astronaut.png").stat().st_mtime_ns == stamp
    code, err = cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND, "--overwrite")
    assert code == 0 and "2 written, 0 skipped" in err
    assert (out / "astronaut.png").stat().st_mtime_ns != stamp
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_recursive_mirrors_folders_and_never_reads_its_own_output(tmp_path, capsys) -> None:
    source = tmp_path / "in"
    save_rgb(source / "a" / "cat.jpg")
    save_rgb(source / "a" / "b" / "dog.png", seed=1)
    save_rgb(source / "top.webp", seed=2)
    out = source / "results"  # inside the input folder
    code, err = cli(capsys, "-i", source, "-o", out, "--blur", "--recursive")
    assert code == 0, err
    assert _files(out) == ["a/b/dog.png", "a/cat.png", "top.png"]
    code, err = cli(capsys, "-i", source, "-o", out, "--blur", "--recursive")
    assert code == 0 and "0 written, 3 skipped" in err  # results/ was not taken as input


def test_collisions_never_overwrite(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in"
    save_rgb(source / "x.jpg", seed=1)
    save_rgb(source / "x.png", seed=2)
    out = tmp_path / "out"
    code, _ = cli(capsys, "-i", source, "-o", out, "--blur", "--save-mask")
    assert code == 0
    assert _files(out) == ["x.mask.png", "x.png", "x.png.mask.png", "x.png.png"]


def test_formats_and_side_files(tmp_path: Path, photo_dir: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--format", "webp", "--quality", "80", "--save-mask", "--save-cutout"]
    args += ["--fit", "contain"]
    code, _ = cli(capsys, "-i", photo_dir, "-o", out, "-b", BACKGROUND, *args)
    assert code == 0
    assert _files(out) == [
        "astronaut.cutout.png",
        "astronaut.mask.png",
        "astronaut.webp",
        "grace_hopper.cutout.png",
        "grace_hopper.mask.png",
        "grace_hopper.webp",
    ]
    assert Image.open(out / "astronaut.webp").format == "WEBP"
    cutout = np.asarray(Image.open(out / "astronaut.cutout.png"))
    assert cutout.shape == (512, 512, 4)
    assert cutout[120, 220, 3] > 240 and cutout[10, 10, 3] < 15  # face opaque, corner clear
    code, _ = cli(capsys, "-i", photo_dir, "-o", tmp_path / "same", "--blur", "--format", "same")
    assert code == 0 and _files(tmp_path / "same") == ["astronaut.jpg", "grace_hopper.jpg"]


def _usage_cases(tmp: Path) -> list[tuple[list[str], str]]:
    photos = tmp / "photos"
    empty = tmp / "empty"
    empty.mkdir()
    (tmp / "not_image.jpg").write_text("text")
    (tmp / "a_file").write_text("x")
    (tmp / "corrupt.pt").write_bytes(b"not a checkpoint at all")
    bad = str(tmp / "corrupt.pt")
    bg = str(BACKGROUND)
    base = ["-i", str(photos), "-o", str(tmp / "out")]

    def torch_or(message: str) -> str:  # without the extra, such runs stop for the extra itself
        return message if installed(*TORCH, "ultralytics") else "requirements-torch.txt"

    sd_or = "is not cached" if installed(*SD) else "requirements-sd.txt"
    return [
        # A corrupt or wrong weights file is named as such, in one line.
        ([*base, "-b", bg, "-m", "1", "--weights", bad], torch_or("is not a DeepLabv3 resnet101")),
        ([*base, "-b", bg, "-m", "2", "--weights", bad], torch_or("is not a YOLO -seg checkpoint")),
        ([*base, "-b", bg, "--nst", "--nst-weights", bad], torch_or("is not a torchvision VGG19")),
        # Missing weights name the exact download command.
        (
            [*base, "-b", bg, "-m", "2", "--yolo-model", "m", "--offline"],
            torch_or("download yolo-m"),
        ),
        (["-i", str(tmp / "missing"), "-o", str(tmp / "o"), "-b", bg], "--input"),
        (["-i", str(empty), "-o", str(tmp / "o"), "-b", bg], "holds no files"),
        ([*base, "-b", str(tmp / "nope.jpg")], "--bg"),
        ([*base, "-b", str(tmp / "not_image.jpg")], "not an image"),
        (["-i", str(photos), "-o", str(tmp / "a_file" / "sub"), "-b", bg], "--output"),
        (["-i", str(photos), "-o", str(photos), "-b", bg], "is the input folder"),
        ([*base, "-b", bg, "-m", "7"], "unknown mode"),
        # Sizes no test caches: the weights are missing and downloads are off (with the torch
        # extra; without it, the same runs stop at once for the missing extra).
        (
            [*base, "-b", bg, "-m", "1", "--deeplab-model", "resnet50", "--offline"],
            torch_or("not cached"),
        ),
        (
            [*base, "-b", bg, "--mode", "yolo", "--yolo-model", "x", "--offline"],
            torch_or("not cached"),
        ),
        ([*base, "-b", bg, "--yolo-conf", "1.5"], "--yolo-conf"),
        ([*base, "-b", bg, "--weights", str(tmp / "missing.pt")], "--weights"),
        ([*base, "-p", "a beach at sunset", "--offline"], sd_or),
        ([*base, "-p", "a beach", "-b", bg], "not both"),
        ([*base, "-b", bg, "--bg-per-image"], "goes with --prompt"),
        ([*base, "--blur", "--nst"], "needs a style image"),
        ([*base, "-b", bg, "--nst", "--nst-size", "8"], "--nst-size"),
        ([*base], "nothing to put behind"),
        ([*base, "-b", bg, "--quality", "0"], "--quality"),
        ([*base, "-b", bg, "--blur", "--blur-strength", "-1"], "--blur-strength"),
        ([*base, "-b", bg, "--workers", "0"], "--workers"),
        ([*base, "-b", bg, "--device", "cuda"], "CPU only"),
        ([*base, "-b", bg, "--quiet", "--verbose"], "--quiet"),
        ([*base, "-b", bg, "--summary", str(tmp)], "--summary"),
        ([*base, "-b", bg, "--fit", "tile"], "--fit"),
        ([*base, "-b", bg, "--max-pixels", "lots"], "--max-pixels"),
        (["-o", str(tmp / "out"), "-b", bg], "--input"),
    ]


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, photo_dir: Path, capsys) -> None:
    for args, expected in _usage_cases(tmp_path):
        code, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert expected in err, (args, err)
        assert "Traceback" not in err
        if "usage:" not in err:  # our own errors: exactly one line naming the problem
            assert err.count("\n") == 1 and err.startswith("backgroundswap: error: "), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_console_script_entry_point_is_main() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="backgroundswap")
    assert script.load() is run.main  # the installed command is this CLI


@needs(*TORCH)
def test_download_command(vgg_weights: Path, capsys) -> None:
    assert run.main(["download", "vgg19"]) == 0
    assert "already cached" in capsys.readouterr().err
    assert run.main(["download", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_interrupted_run_leaves_no_partial_files(tmp_path: Path) -> None:
    source = _photos(tmp_path / "in", 40, 400, 600)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "run.py", "-i", source, "-o", out, "--blur", "--quiet"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    import signal
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and any(out.glob("*.png"))):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    written = sorted(out.glob("*"))
    assert all(not p.name.startswith(".") for p in written)  # no temporary files
    for path in written:
        with Image.open(path) as img:
            img.load()  # every file under its final name is complete
    assert 0 < len(written) < 40


def _start(source: Path, out: Path, *extra: object) -> subprocess.Popen:
    args = [sys.executable, "run.py", "-i", source, "-o", out, "--blur", "--quiet", *extra]
    return subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _wait_for_outputs(out: Path, at_least: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < at_least:
        time.sleep(0.01)


@pytest.mark.skipif(os.name != "posix", reason="signals")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_moment_then_a_rerun_finishes_cleanly(tmp_path: Path, seed: int):
    import random
    import signal
    import time

    source = _photos(tmp_path / "in", 30, 400, 600)
    out = tmp_path / "out"
    proc = _start(source, out, "--save-mask")
    _wait_for_outputs(out, 1)
    time.sleep(random.Random(seed).uniform(0, 0.2))  # somewhere in the middle of the work
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert len(list(out.glob("*.png"))) < 60  # it was killed mid-run
    for path in out.glob("*.png"):  # whatever is under a final name is complete
        with Image.open(path) as img:
            img.load()
    rerun = _start(source, out, "--save-mask", "--summary", tmp_path / "s.json")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no temporary, no claim
    assert len(names) == 60
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["counts"]["ok"] + report["counts"]["skipped"] == 30


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigterm_stops_like_ctrl_c_and_writes_the_summary(tmp_path: Path) -> None:
    import signal

    source = _photos(tmp_path / "in", 40, 400, 600)
    out = tmp_path / "out"
    proc = _start(source, out, "--summary", tmp_path / "s.json")
    _wait_for_outputs(out, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "s.json").read_text())
    written = sorted(out.glob("*.png"))
    assert report["interrupted"] and 0 < len(written) < 40
    # Every image finished during the shutdown is counted: the summary matches the disk.
    assert report["counts"]["ok"] == len(written)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_a_second_ctrl_c_still_writes_the_summary(tmp_path: Path) -> None:
    import signal
    import time

    source = _photos(tmp_path / "in", 40, 400, 600)
    out = tmp_path / "out"
    proc = _start(source, out, "--summary", tmp_path / "s.json", "--matting", "quality")
    _wait_for_outputs(out, 2)  # the first one's job has surely returned by then
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # impatient: stop waiting for the images in progress
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["interrupted"] and report["counts"]["ok"] >= 1


def test_the_package_installs_in_layers() -> None:
    """The core has no PyTorch, diffusers, ONNX Runtime or Ray; each comes with its extra, at
    the requirements files' pins."""
    from importlib.metadata import metadata

    requires = metadata("backgroundswap").get_all("Requires-Dist")
    core = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("mediapipe==") for r in core)
    heavy = ("torch", "diffusers", "onnxruntime", "ray", "ultralytics")
    assert not [r for r in core if r.startswith(heavy)]
    for pin, extra in [
        ("torch==", "torch"),
        ("diffusers==", "sd"),
        ("onnxruntime==", "salient"),
        ("ray[data]==", "ray"),
        ("onnxruntime==", "all"),
    ]:
        assert [r for r in requires if r.startswith(pin) and f'extra == "{extra}"' in r], pin
    pinned = (ROOT / "requirements-torch.txt").read_text()
    assert next(r for r in requires if r.startswith("torch==")).split(";")[0] in pinned


def test_one_photo_in_one_file_out(tmp_path: Path, photo_dir: Path, capsys) -> None:
    photo = photo_dir / "astronaut.jpg"
    result = tmp_path / "made" / "result.png"
    code, err = cli(capsys, "-i", photo, "-o", result, "-b", BACKGROUND, "--save-mask")
    assert code == 0, err
    assert _files(tmp_path / "made") == ["result.mask.png", "result.png"]
    with Image.open(result) as img:
        assert img.size == Image.open(photo).size
    code, err = cli(capsys, "-i", photo, "-o", result, "-b", BACKGROUND, "--save-mask")
    assert code == 0 and "0 written, 1 skipped" in err  # resumes like a folder run
    code, err = cli(capsys, "-i", photo, "-o", tmp_path / "folder", "-b", BACKGROUND)
    assert code == 0 and _files(tmp_path / "folder") == ["astronaut.png"]  # -o DIR
    code, err = cli(
        capsys, "-i", photo, "-o", tmp_path / "r.jpg", "-b", BACKGROUND, "--quality", "80"
    )
    assert code == 0 and Image.open(tmp_path / "r.jpg").format == "JPEG"
    for args, message in [
        (["-o", tmp_path / "r.gif"], "cannot write this kind of file"),
        (["-o", tmp_path / "x.png", "--recursive"], "--recursive: goes with a folder"),
        (["-o", photo], "is the input photo"),
    ]:
        code, err = cli(capsys, "-i", photo, "-b", BACKGROUND, *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_library_warnings_stay_off_the_terminal(tmp_path: Path) -> None:
    """With Python's warnings switched on (-W default): a usage error is one line even when
    torch, Ultralytics and diffusers were imported, and a photo's own warning (Pillow's corrupt
    EXIF) goes to that file's summary row and one log line naming it."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    base = [sys.executable, "-W", "default", "run.py", "-o", str(tmp_path / "o")]
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(
        photos / "exif.jpg", exif=b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x0f\0\x02\0\0\x10\0\0\0\0\x32"
    )
    for extra in (
        ["-m", "1", "--deeplab-model", "resnet50", "--offline", "--blur"],
        ["-m", "2", "--yolo-model", "l", "--offline", "--blur"],
        ["--prompt", "a beach", "--offline"],
    ):
        result = subprocess.run(
            [*base, "-i", str(photos), *extra], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""
    summary = tmp_path / "s.json"
    result = subprocess.run(
        [*base, "-i", str(photos), "--blur", "--summary", str(summary)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(summary.read_text())["files"]
    # Pillow's own words for the broken EXIF: "Corrupt EXIF data" (13), "Truncated File Read" (12)
    said = ("Corrupt EXIF data", "Truncated File Read")
    assert any(text in w for w in row["warnings"] for text in said), row["warnings"]
    lines = [line for line in result.stderr.splitlines() if any(t in line for t in said)]
    assert lines and all(line.startswith("exif.jpg: UserWarning") for line in lines)


def test_a_folder_of_backgrounds_is_recorded_per_photo(tmp_path: Path, photo_dir: Path, capsys):
    folder = tmp_path / "bgs"
    folder.mkdir()
    (folder / "astronaut.png").write_bytes(BACKGROUND.read_bytes())  # any format: a JPEG
    code, err = cli(
        capsys,
        "-i",
        photo_dir,
        "-o",
        tmp_path / "out",
        "-b",
        folder,
        "--bg-match",
        "name",
        "--summary",
        tmp_path / "s.json",
    )
    assert code == 1, err  # grace_hopper has no background of its name
    rows = {
        Path(r["input"]).name: r for r in json.loads((tmp_path / "s.json").read_text())["files"]
    }
    assert rows["astronaut.jpg"]["extra"]["background"] == str(folder / "astronaut.png")
    assert rows["grace_hopper.jpg"]["error"].startswith("no background named grace_hopper")
