"""Files and names: finding inputs, naming outputs without collisions, atomic writes."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from operations.media import files
from operations.media.encode import encode
from operations.media.files import find_inputs, plan_outputs, write_atomic
from tests.helpers import random_rgb


def test_write_atomic_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def half_then_fail(f) -> None:
        f.write(b"half a file")
        raise KeyboardInterrupt  # even a Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a.png", half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_encoded_file_mode_follows_umask(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    encode(random_rgb(4, 4), target)
    assert target.stat().st_mode & 0o777 == 0o666 & ~files._UMASK


def test_find_inputs_skips_hidden_and_excluded(tmp_path: Path) -> None:
    for rel in [
        "b.jpg",
        "a.png",
        ".DS_Store",
        "notes.txt",
        "sub/c.jpg",
        ".hidden/d.jpg",
        "out/e.png",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert find_inputs(tmp_path) == [Path("a.png"), Path("b.jpg"), Path("notes.txt")]
    found = find_inputs(tmp_path, recursive=True, exclude=[tmp_path / "out"])
    assert found == [Path("a.png"), Path("b.jpg"), Path("notes.txt"), Path("sub/c.jpg")]


def test_plan_keeps_relative_path_and_stem() -> None:
    plan = plan_outputs([Path("a/cat.jpg"), Path("dog.jpeg")], "png")
    assert plan == {Path("a/cat.jpg"): [Path("a/cat.png")], Path("dog.jpeg"): [Path("dog.png")]}


def test_plan_resolves_collisions_deterministically() -> None:
    inputs = [Path("x.png"), Path("X.jpg"), Path("x.jpg"), Path("y.gif")]
    plan = plan_outputs(inputs, "png")
    # Sorted order is X.jpg, x.jpg, x.png: the first keeps the plain name, case-insensitively.
    assert plan[Path("X.jpg")] == [Path("X.png")]
    assert plan[Path("x.jpg")] == [Path("x.jpg.png")]
    assert plan[Path("x.png")] == [Path("x.png.png")]
    assert plan[Path("y.gif")] == [Path("y.png")]
    assert plan_outputs(list(reversed(inputs)), "png") == plan  # input order does not matter
    names = [p[0].as_posix().casefold() for p in plan.values()]
    assert len(set(names)) == len(names)


def test_plan_collision_with_a_disambiguated_name() -> None:
    # Three names equal but for case: the whole-file-name fallback collides too, so ~2 is added.
    plan = plan_outputs([Path("a.jpg"), Path("A.jpg"), Path("a.JPG")], "png")
    assert plan[Path("A.jpg")] == [Path("A.png")]
    assert plan[Path("a.JPG")] == [Path("a.JPG.png")]
    assert plan[Path("a.jpg")] == [Path("a.jpg~2.png")]


def test_plan_side_files_and_same_format() -> None:
    plan = plan_outputs([Path("a.jpg"), Path("a.mask.jpg")], "same", [".mask.png"])
    assert plan[Path("a.jpg")] == [Path("a.jpg"), Path("a.mask.png")]
    # a.mask.jpg's own side file would be a.mask.mask.png; its main name a.mask.jpg is free.
    assert plan[Path("a.mask.jpg")] == [Path("a.mask.jpg"), Path("a.mask.mask.png")]
    plan = plan_outputs([Path("a.jpg"), Path("a.mask.png")], "png", [".mask.png"])
    assert plan[Path("a.jpg")] == [Path("a.png"), Path("a.mask.png")]
    assert plan[Path("a.mask.png")][0] == Path("a.mask.png.png")  # a.mask.png was taken
    assert plan_outputs([Path("a.gif")], "same")[Path("a.gif")] == [Path("a.png")]


# --- names of any length, working files, claims, sweeps, symbolic links ----------------------


@pytest.mark.parametrize("name", ["a" * 251 + ".png", "é" * 125 + ".png", "b" * 238 + ".png"])
def test_the_longest_names_the_file_system_takes_work(tmp_path: Path, name: str) -> None:
    assert 242 <= len(os.fsencode(name)) <= 255  # the temporary must not add to its length
    encode(random_rgb(4, 4), tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_temporaries_are_short_locked_while_written_and_recognisably_ours(tmp_path: Path) -> None:
    seen = []

    def look(f) -> None:
        (temporary,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        seen.append(temporary)
        # Held: another run's sweep leaves it alone even though it is not ours to know.
        assert files.sweep([tmp_path], before=time.time() + 60) == 0
        f.write(b"data")

    write_atomic(tmp_path / ("x" * 250 + ".png"), look)
    assert seen[0].startswith(files.PREFIX) and len(seen[0]) == 30


def test_a_sweep_removes_only_stale_working_files_of_ours(tmp_path: Path) -> None:
    stale_tmp = tmp_path / ".bgs-0123456789ab-deadbeef.tmp"
    stale_claim = tmp_path / ".bgs-0123456789ab.claim"
    theirs = tmp_path / ".photo.png.abc123.tmp"  # not ours: never touched
    for path in (stale_tmp, stale_claim, theirs):
        path.write_bytes(b"left by a killed run")
    os.utime(stale_tmp, (time.time() - 10, time.time() - 10))
    young = tmp_path / ".bgs-ba9876543210-cafebabe.tmp"  # made after this run started
    young.write_bytes(b"")
    held = files.Claim.take(tmp_path / "busy.png")  # a job another run is working on
    assert isinstance(held, files.Claim)
    removed = files.sweep([tmp_path], before=time.time() - 5)
    assert removed == 2 and not stale_tmp.exists() and not stale_claim.exists()
    assert theirs.exists() and young.exists() and held.path.exists()
    held.release()
    assert not held.path.exists()


def test_a_claimed_job_tells_who_holds_it(tmp_path: Path) -> None:
    first = files.Claim.take(tmp_path / "a.png")
    assert isinstance(first, files.Claim)
    second = files.Claim.take(tmp_path / "a.png")
    assert second == f"PID {os.getpid()} on {socket.gethostname()}"
    first.release()
    again = files.Claim.take(tmp_path / "a.png")
    assert isinstance(again, files.Claim)
    again.release()


def test_broken_links_are_inputs_and_linked_folders_are_read_once(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (root / "real").mkdir(parents=True)
    (root / "real" / "b.jpg").write_bytes(b"x")
    (root / "a.jpg").write_bytes(b"x")
    (elsewhere / "deep").mkdir(parents=True)
    (elsewhere / "deep" / "c.jpg").write_bytes(b"x")
    (root / "gone.jpg").symlink_to(root / "nowhere.jpg")  # dangling: reported, not hidden
    (root / "shared").symlink_to(elsewhere)  # a folder outside: followed
    (elsewhere / "deep" / "back").symlink_to(elsewhere)  # ...whose link back up loops: once
    (root / "alias").symlink_to(root / "real")  # inside: read under its own name
    (root / "real" / "up").symlink_to(root)  # up the tree: a loop
    found = find_inputs(root, recursive=True)
    expected = ["a.jpg", "gone.jpg", "real/b.jpg", "shared/deep/c.jpg"]
    assert found == [Path(p) for p in expected]
    assert find_inputs(root) == [Path("a.jpg"), Path("gone.jpg")]


def test_names_in_messages_and_reports() -> None:
    assert files.printable("a\nb.jpg") == "a\\nb.jpg"  # one line stays one line
    raw = b"caf\xe9.jpg"
    assert files.printable(os.fsdecode(raw)) == "caf\\xe9.jpg"
    fields = files.name_fields("input", os.fsdecode(raw))
    assert fields["input"] == "caf\ufffd.jpg"
    assert unquote_to_bytes(fields["input_bytes"]) == raw  # lossless
    assert files.name_fields("input", "café.jpg") == {"input": "café.jpg"}


def test_later_plans_go_around_the_names_given_out() -> None:
    """A watched folder's late arrivals never land on an earlier file's outputs."""
    taken = [Path("x.png"), Path("x.mask.png")]  # x.jpg's, planned earlier
    plan = plan_outputs([Path("x.png")], "png", [".mask.png"], taken=taken)
    assert plan[Path("x.png")] == [Path("x.png.png"), Path("x.png.mask.png")]
    plan = plan_outputs([Path("y.jpg")], "png", [".mask.png"], taken=taken)
    assert plan[Path("y.jpg")] == [Path("y.png"), Path("y.mask.png")]  # no clash: as usual
