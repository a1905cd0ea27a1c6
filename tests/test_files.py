"""Files and names: finding inputs, naming outputs without collisions, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from operations import files
from operations.encode import encode
from operations.files import find_inputs, plan_outputs, write_atomic
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
    for rel in ["b.jpg", "a.png", ".DS_Store", "notes.txt", "sub/c.jpg", ".hidden/d.jpg",
                "out/e.png"]:  # fmt: skip
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
