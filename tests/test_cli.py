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
from tests.helpers import BACKGROUND, ROOT, SAMPLES, SD, TORCH, cli, installed, needs, save_rgb


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


def test_the_command_keeps_one_malloc_arena_where_glibc_has_them() -> None:
    import platform

    code = "import run, sys; sys.exit(0 if run.one_malloc_arena() else 3)"
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}

    def took(**extra: str) -> bool:
        command = [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=ROOT, env={**env, **extra}, capture_output=True)
        assert result.returncode in (0, 3), result.stderr
        return result.returncode == 0

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert took() == glibc  # mallopt took the setting
    assert not took(MALLOC_ARENA_MAX="4")  # the user's own setting stands


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
def test_a_second_ctrl_c_still_writes_a_summary_that_matches_the_disk(tmp_path: Path) -> None:
    """The second Ctrl-C stops waiting for the images in progress: they write nothing from then
    on (a commit already under way finishes and is counted), so the summary's count is what is
    on disk, and nothing half-written is left."""
    import signal
    import time

    source = _photos(tmp_path / "in", 40, 400, 600)
    out = tmp_path / "out"
    proc = _start(source, out, "--summary", tmp_path / "s.json")
    _wait_for_outputs(out, 2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # impatient: stop waiting for the images in progress
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads((tmp_path / "s.json").read_text())
    written = sorted(out.glob("*.png"))
    assert report["interrupted"] and report["counts"]["ok"] == len(written) >= 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.name != "posix", reason="signals")
@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8, 1.5])
def test_ctrl_c_during_start_up_still_writes_the_summary(tmp_path: Path, delay: float) -> None:
    """While the libraries and the model load: exit 130, no traceback, and the summary says
    the run was interrupted (once, a Ctrl-C there gave no summary at all)."""
    import signal
    import time

    proc = _start(SAMPLES, tmp_path / "out", "--summary", tmp_path / "s.json")
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    report = json.loads((tmp_path / "s.json").read_text())
    if proc.returncode == 0:  # it had finished the two photos already: fine too
        assert not report["interrupted"] and report["counts"]["ok"] == 2
        return
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert report["interrupted"]
    assert report["counts"]["ok"] == len(list((tmp_path / "out").glob("*.png")))


def test_a_stop_whose_exception_was_lost_still_stops_the_run(tmp_path: Path) -> None:
    """A KeyboardInterrupt raised inside a C library's callback is swallowed (llvmlite's, while
    numba compiles): the stop event the signal also sets ends the run at the engine's next
    wait, as an interruption."""
    import threading

    from operations.batch import run_batch
    from operations.build import build_pipeline
    from operations.options import Options
    from tests.helpers import DiscSegmenter

    stop = threading.Event()

    class Stopping(DiscSegmenter):
        def predict(self, rgb):
            if self.calls == 1:  # the second photo: as if Ctrl-C came, its raise lost
                stop.set()
            return super().predict(rgb)

    source = _photos(tmp_path / "in", 12, 200, 300)
    options = Options(input=source, output=tmp_path / "out", blur=True, workers=1).validated()
    with build_pipeline(options.recipe(), segmenter=Stopping()) as pipeline:
        batch = run_batch(options, pipeline=pipeline, stop=stop, progress=False)
    assert batch.interrupted and batch.exit_code == 130
    assert batch.count("ok") == len(list((tmp_path / "out").glob("*.png"))) < 12


def test_nothing_is_written_outside_the_output_folder_and_our_cache(
    tmp_path: Path, real_u2netp: Path
) -> None:
    """MediaPipe imports matplotlib, which wrote its font cache to ~/.cache/matplotlib; ONNX
    Runtime wrote a telemetry device id and database to ~/.cache/Microsoft. Both go to our
    cache folder now (here $BACKGROUNDSWAP_HOME, the tests' own), and the home stays empty."""
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    runs = [["-b", "white"]]
    if installed("onnxruntime"):
        runs.append(["-b", "white", "--mode", "auto", "--salient-model", "u2netp", "--offline"])
    for n, extra in enumerate(runs):
        command = [sys.executable, "run.py", "-i", SAMPLES, "-o", tmp_path / f"out{n}", "-q"]
        done = subprocess.run(
            [*map(str, command), *extra], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    assert [p for p in home.rglob("*") if p.is_file()] == []
    ours = Path(os.environ["BACKGROUNDSWAP_HOME"])
    assert list(ours.glob("matplotlib/fontlist-*.json"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["-b", "rgb(300,0,0)"],
            "--bg 'rgb(300,0,0)': each of red, green and blue must be between 0 and 255",
        ),
        (
            ["-b", "#ff000080"],
            "--bg '#ff000080': has transparency (alpha 128 of 255): a background colour is "
            "opaque; for no background at all give 'transparent'",
        ),
        (
            ["-b", "transparent", "--format", "jpg"],
            "needs an output that keeps transparency: --format png, webp or avif",
        ),
        (
            ["-b", "white", "--device", "cuda"],
            "--device 'cuda': nothing in this run can use it: the segmentation model "
            "(mediapipe) runs on the CPU only",
        ),
        (["-b", "white", "--canvas", "1:500", "--frame", "subject"], "beyond 10:1 either way"),
    ],
)
def test_hostile_settings_are_refused_in_one_line(tmp_path: Path, capsys, args, expected) -> None:
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", SAMPLES, "-o", out, *args)
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert not out.exists()  # a refused run leaves no folder behind


def test_an_image_name_as_the_output_of_a_folder_is_refused(tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "-i", SAMPLES, "-o", tmp_path / "result.png", "-b", "white")
    assert code == 2 and "--output" in err and "names a file, but --input is a folder" in err
    assert not (tmp_path / "result.png").exists()  # no folder of that name


def test_the_summary_may_go_in_the_output_folder_the_run_creates(tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, err = cli(capsys, "-i", SAMPLES, "-o", out, "-b", "white", "--summary", out / "s.json")
    assert code == 0, err
    assert json.loads((out / "s.json").read_text())["counts"]["ok"] == 2
    code, err = cli(
        capsys, "-i", SAMPLES, "-o", out, "-b", "white", "--summary", tmp_path / "no" / "s.json"
    )
    assert code == 2 and "its folder does not exist" in err  # elsewhere: it must exist


def test_an_error_a_library_makes_of_the_interruption_is_the_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C that lands inside numba's import comes out as ImportError ("numba._devicearray
    failed to import"): once a stop was asked for, such an error ends the run as interrupted,
    with its summary, not as a traceback."""
    import threading

    from operations import batch as batch_module
    from operations.options import Options

    stop = threading.Event()

    def loading(*args, **kwargs):
        stop.set()  # the signal came while the model loaded ...
        raise ImportError("numba._devicearray failed to import")  # ... and was renamed

    monkeypatch.setattr(batch_module, "create_engine", loading)
    options = Options(
        input=SAMPLES, output=tmp_path / "out", blur=True, summary=tmp_path / "s.json"
    ).validated()
    result = batch_module.run_batch(options, stop=stop, progress=False)
    assert result.interrupted and json.loads((tmp_path / "s.json").read_text())["interrupted"]

    def broken(*args, **kwargs):
        raise ImportError("numba._devicearray failed to import")

    monkeypatch.setattr(batch_module, "create_engine", broken)
    with pytest.raises(ImportError):  # the same error with no stop asked for is an error
        batch_module.run_batch(options, stop=threading.Event(), progress=False)


def test_a_signal_handler_sets_the_stop_without_a_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop event a signal handler sets takes no lock: a handler runs in the main thread
    between two bytecodes, perhaps inside that very event's wait, where a threading.Event's
    set() would wait forever on the lock its own thread holds (a watcher hung on SIGTERM)."""
    import select
    import threading

    import run

    event = run._SignalEvent()
    real_select = select.select

    def interrupted(*args: object) -> object:  # the handler runs in the middle of the wait
        event.set()
        return real_select(args[0], [], [], 0)

    monkeypatch.setattr(select, "select", interrupted)
    assert event.wait(5) is True and event.is_set()
    monkeypatch.undo()
    # From another thread, as the engines' waits see it: woken at once, every waiter.
    other = run._SignalEvent()
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(other.wait(10))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    other.set()
    for waiter in waiters:
        waiter.join(2)
    assert woken == [True, True, True]
    assert run._SignalEvent().wait(0.01) is False
