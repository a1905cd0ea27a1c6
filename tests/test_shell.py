"""The shell's conventions, through the real command: ``-`` for standard input and output, a
TOML settings file with profiles, JSON Lines events read while the run goes on, and completion
scripts loaded in their shells."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import ROOT, SAMPLES, cli, save_rgb

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

RUN = [sys.executable, str(ROOT / "run.py")]
PHOTO = SAMPLES / "astronaut.jpg"


def test_a_pipe_in_and_out_gives_the_bytes_of_the_file_route(tmp_path: Path) -> None:
    piped = subprocess.run(
        [*RUN, "-i", "-", "-o", "-", "-b", "white", "-q"],
        input=PHOTO.read_bytes(),
        capture_output=True,
        check=True,
    )
    subprocess.run([*RUN, "-i", PHOTO, "-o", tmp_path / "a.png", "-b", "white", "-q"], check=True)
    assert piped.stdout == (tmp_path / "a.png").read_bytes()
    assert piped.stdout.startswith(b"\x89PNG")
    jpeg = subprocess.run(
        [*RUN, "-i", "-", "-o", "-", "-b", "white", "--format", "jpg", "-q"],
        input=PHOTO.read_bytes(),
        capture_output=True,
        check=True,
    )
    assert jpeg.stdout.startswith(b"\xff\xd8")  # --format says what goes out


def test_standard_streams_are_refused_where_they_cannot_work(tmp_path: Path) -> None:
    def refused(args: list, stdin: bytes = b"") -> str:
        done = subprocess.run([*RUN, *args], input=stdin, capture_output=True)
        assert done.returncode == 2 and done.stdout == b"", done.stderr
        return done.stderr.decode()

    assert "holds no image" in refused(["-i", "-", "-o", tmp_path / "x.png", "-b", "white"], b"x")
    assert "is empty" in refused(["-i", "-", "-o", tmp_path / "x.png", "-b", "white"])
    assert "not a folder" in refused(["-i", SAMPLES, "-o", "-", "-b", "white"])
    side = refused(["-i", "-", "-o", "-", "-b", "white", "--save-mask"], PHOTO.read_bytes())
    assert "--save-mask" in side
    both = refused(["-i", "-", "-o", "-", "-b", "white", "--events", "-"], PHOTO.read_bytes())
    assert "--events '-'" in both
    # A terminal as standard output: the image would be garbage on the screen.
    main, replica = pty.openpty()
    done = subprocess.run(
        [*RUN, "-i", PHOTO, "-o", "-", "-b", "white"], stdout=replica, stderr=subprocess.PIPE
    )
    os.close(replica)
    os.close(main)
    assert done.returncode == 2 and b"standard output is a terminal" in done.stderr


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_settings_file_its_profile_and_the_flags_combine(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png", 40, 60)
    config = tmp_path / "job.toml"
    config.write_text(
        '# the catalogue job\nbg = "white"\nformat = "jpg"\nquality = 70\n'
        "[catalogue]\nquality = 85\nmask-grow = 2\n"
    )
    summary = tmp_path / "s.json"
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "--summary", summary, "-q"]
    assert cli(capsys, *args, "--config", config)[0] == 0
    options = _summary(summary)["options"]
    assert (options["bg"], options["format"], options["quality"]) == ("white", "jpg", 70)
    assert cli(capsys, *args, "--config", config, "--profile", "catalogue", "--overwrite")[0] == 0
    options = _summary(summary)["options"]
    assert (options["quality"], options["mask_grow"]) == (85, 2)  # the profile over the top
    flags = ["--config", config, "--profile", "catalogue", "--quality", "60", "--overwrite"]
    assert cli(capsys, *args, *flags)[0] == 0
    assert _summary(summary)["options"]["quality"] == 60  # the command line wins


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('bg = "white"\nmask-grwo = 3\n', "job.toml:2: mask-grwo: not a setting"),
        ('bg = "white"\n\nmatting = "best"\n', 'job.toml:3: matting = "best": choose from'),
        ('bg = "white"\nquality = "high"\n', 'job.toml:2: quality = "high": invalid int'),
        ('bg = "white"\nmask-grow = 900\n', "job.toml:2: --mask-grow '900': must be within"),
        ('bg = "white"\nblur = 1\n', "job.toml:2: blur = 1: true or false"),
        ('bg = "white"\n[web]\nformat = "jpg"\nquality = 0\n', "job.toml:4: --quality '0': must"),
        ("bg = \n", "job.toml: not TOML"),
    ],
)
def test_a_bad_settings_line_is_named(tmp_path: Path, capsys, text: str, words: str) -> None:
    save_rgb(tmp_path / "in" / "a.png")
    config = tmp_path / "job.toml"
    config.write_text(text)
    profile = ["--profile", "web"] if "[web]" in text else []
    code, err = cli(capsys, "-i", tmp_path / "in", "-o", tmp_path / "o", "--config", config,
                    *profile)  # fmt: skip
    assert code == 2 and words in err, err


def test_a_missing_profile_and_a_profile_without_a_file_are_refused(tmp_path, capsys) -> None:
    config = tmp_path / "job.toml"
    config.write_text('bg = "white"\n[web]\nquality = 80\n')
    code, err = cli(capsys, "-i", SAMPLES, "-o", tmp_path / "o", "--config", config,
                    "--profile", "print")  # fmt: skip
    assert code == 2 and "no [print] table (web)" in err
    code, err = cli(capsys, "-i", SAMPLES, "-o", tmp_path / "o", "--profile", "web")
    assert code == 2 and "--profile 'web': goes with --config" in err


def test_config_show_prints_toml_a_run_reads_back(tmp_path: Path, capsys) -> None:
    config = tmp_path / "job.toml"
    config.write_text('bg = "white"\n[web]\nformat = "webp"\nmask-feather = 1.5\n')
    shown = subprocess.run(
        [*RUN, "config", "--show", "--config", config, "--profile", "web", "--quality", "77"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    settings = tomllib.loads(shown)
    assert settings["format"] == "webp" and settings["quality"] == 77
    assert settings["mask-feather"] == 1.5 and settings["bg"] == "white"
    again = tmp_path / "shown.toml"
    again.write_text(shown)
    save_rgb(tmp_path / "in" / "a.png", 40, 60)
    summary = tmp_path / "s.json"
    assert cli(capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "--config", again,
               "--summary", summary, "-q")[0] == 0  # fmt: skip
    assert _summary(summary)["options"]["quality"] == 77


def test_events_are_read_while_the_run_goes_and_agree_with_the_summary(tmp_path: Path) -> None:
    photos = tmp_path / "in"
    photos.mkdir()
    for index in range(6):
        Image.open(PHOTO).save(photos / f"p{index}.jpg")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    summary = tmp_path / "s.json"
    command = [*RUN, "-i", photos, "-o", tmp_path / "out", "-b", "white", "--events", "-",
               "--summary", summary, "-q"]  # fmt: skip
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None
    first = json.loads(reader.stdout.readline())
    running = reader.poll() is None  # the line came while the run went on
    events = [first, *(json.loads(line) for line in reader.stdout)]
    assert reader.wait() == 1  # the broken file
    assert running and first["event"] == "run_started" and first["settings"]["bg"] == "white"
    files = [e for e in events if e["event"] == "file"]
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["counts"] == {"ok": 6, "skipped": 0, "failed": 1}
    rows = _summary(summary)["files"]
    by_input = {e["row"]["input"]: e["row"] for e in files}
    for row in rows:
        event_row = by_input[row["input"]]
        assert (event_row["status"], event_row["output"], event_row["error"]) == (
            row["status"],
            row["output"],
            row["error"],
        )
    assert len(files) == len(rows) == 7


def test_events_to_a_file_say_skipped_files_on_a_rerun(tmp_path: Path, capsys) -> None:
    save_rgb(tmp_path / "in" / "a.png", 40, 60)
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-b", "white", "-q"]
    assert cli(capsys, *args)[0] == 0
    events = tmp_path / "events.jsonl"
    assert cli(capsys, *args, "--events", events)[0] == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["run_started", "file", "run_finished"]
    assert lines[1]["status"] == "skipped"


def _completes(shell: str, script: str, words: str) -> str:
    if shell == "bash":
        program = (
            f"{script}\nCOMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); "
            '_backgroundswap; echo "${COMPREPLY[@]}"'
        )
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True).stdout
    if shell == "fish":
        program = f"{script}\ncomplete -C '{words}'"
        return subprocess.run(["fish", "-c", program], capture_output=True, text=True).stdout
    # zsh: the script loads (through bashcompinit) and defines the completion function.
    program = f"{script}\n(( $+functions[_backgroundswap] )) && echo loaded"
    return subprocess.run(["zsh", "-c", program], capture_output=True, text=True).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_completion_script_loads_in_its_shell_and_completes_a_flag(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} on this machine")
    script = subprocess.run(
        [*RUN, "completion", shell], capture_output=True, text=True, check=True
    ).stdout
    if shell == "zsh":
        assert "loaded" in _completes(shell, script, "")
        return
    assert "--mask-grow" in _completes(shell, script, "backgroundswap --mask-g")
    if shell == "bash":
        assert "quality" in _completes(shell, script, "backgroundswap --matting q")
        assert "review" in _completes(shell, script, "backgroundswap rev")
