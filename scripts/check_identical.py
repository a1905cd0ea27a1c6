"""Run the tool from two commits on the same inputs and compare every output byte for byte.

``python scripts/check_identical.py --against REV`` checks out REV in a temporary git worktree,
then runs each case below with both trees' ``run.py`` (photos and videos, every backend's
plumbing with random weights in the real formats, both engines) and compares the files they
wrote: results, masks, cut-outs, generated backgrounds and thumbnails byte for byte (videos by
every byte of their streams' packets: see VIDEOS); summaries by their rows (times and dates
apart).
Exit 0 when all are the same. Made for refactors that must not change a single output; it takes
a few minutes (Ray's start-up is most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Each case's arguments (split as a shell would; the braces are filled with the inputs).
CASES: dict[str, str] = {
    "photos, defaults + side files": "-i {photos} -b {bg} --save-mask --save-cutout",
    "portrait mode, JPEG": "-i {photos} --blur --format jpg --quality 90",
    "quality matting + the scene's light": (
        "-i {photos} -b {bg} --matting quality --harmonize --light-wrap --shadow --report"
    ),
    "matting off, contain, blurred": "-i {photos} -b {bg} --matting off --fit contain --blur",
    "a folder of backgrounds": "-i {photos} -b {bgs} --bg-match cycle",
    "a video with sound + side files": "-i {clips} -b {bg} --save-mask --save-cutout --report",
    "a video background": "-i {photos} -b {clip}",
    "webm": "-i {clips} -b {bg} --video-codec vp9",
    "deeplab": "-i {photos} -b {bg} --mode 1 --deeplab-model mobilenet_v3_large --offline",
    "yolo": "-i {photos} -b {bg} --mode 2 --offline --classes person",
    "salient": "-i {photos} -b {bg} --mode salient --salient-model {onnx} --batch-size 2",
    "style transfer": "-i {small} -b {bg} --nst --nst-size 64 --nst-steps 2 --offline",
    "a prompt": "-i {small} --prompt 'a beach' --sd-model {sd} --steps 2 --offline --harmonize",
    "a prompt per photo": (
        "-i {small} --prompt 'a beach' --sd-model {sd} --steps 2 --offline --bg-per-image"
    ),
    "around the subject": (
        "-i {small} --prompt 'a beach' --sd-model {inpaint} --steps 2 --offline --around"
    ),
    "a colour, framed": "-i {photos} -b '#f4f4f4' --frame subject --canvas 300x300 --shadow",
    "transparent": "-i {photos} -b transparent --format png --shadow",
    "backgrounds by name": "-i {photos} -b {named} --bg-match name",
    "style from a folder": "-i {small} -b {bgs} --nst --nst-size 64 --nst-steps 2 --offline",
    "style from a video's first frame": (
        "-i {small} -b {clip} --nst --nst-size 64 --nst-steps 2 --offline"
    ),
    "videos refused a transparent background": "-i {clips} -b transparent --format png",
    "ray engine": "-i {photos} -b {bg} --engine ray --save-mask",
}


def _inputs(folder: Path) -> dict[str, str]:
    """The cases' inputs: the sample photos, a small photo, a clip with sound, backgrounds."""
    from PIL import Image

    from tests.helpers import BACKGROUND, SAMPLES, make_clip
    from tests.models import make_deeplab, make_tiny_sd, make_vgg, make_yolo, write_graph

    photos, small, clips, bgs = (folder / n for n in ("photos", "small", "clips", "bgs"))
    for path in (photos, small, clips, bgs):
        path.mkdir(parents=True)
    for sample in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy(sample, photos / sample.name)
        Image.open(sample).resize((96, 96)).save(small / (sample.stem + ".png"))
    make_clip(clips / "pan.mp4")
    make_clip(folder / "bgclip.mp4", audio=False, photo=BACKGROUND)
    for n, colour in enumerate(((200, 30, 30), (30, 200, 30))):
        Image.new("RGB", (64, 48), colour).save(bgs / f"bg{n}.png")
    make_deeplab(), make_yolo(), make_vgg()
    onnx = write_graph(folder / "tiny.onnx", (64, 64), gain=4.0)
    sd, inpaint = make_tiny_sd(folder), make_tiny_sd(folder, inpaint=True)
    named = folder / "named"  # a background of each photo's name
    named.mkdir()
    for n, sample in enumerate(sorted(SAMPLES.glob("*.jpg"))):
        Image.new("RGB", (64, 48), (40 * n, 90, 200 - 40 * n)).save(named / f"{sample.stem}.png")
    names = {"photos": photos, "small": small, "clips": clips, "bgs": bgs, "onnx": onnx}
    names |= {"sd": sd, "inpaint": inpaint, "named": named}
    return {
        **{k: str(v) for k, v in names.items()},
        "bg": str(BACKGROUND),
        "clip": str(folder / "bgclip.mp4"),
    }


# Videos are compared by their streams' packets, every byte of picture and sound, stream by
# stream: Matroska (WebM) writes random segment and track ids, and how the sound's packets
# interleave with the picture's follows the threads' timing (the same run twice differs there).
VIDEOS = (".mp4", ".mov", ".webm", ".mkv")


def _packets(path: Path) -> dict[int, list[tuple[int | None, int | None, bytes]]]:
    import av

    streams: dict[int, list[tuple[int | None, int | None, bytes]]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                streams.setdefault(packet.stream.index, []).append(
                    (packet.pts, packet.dts, bytes(packet))
                )
    return streams


def _rows(path: Path) -> list[dict[str, object]]:
    """A summary's rows without what changes from run to run (times, the output's folder)."""
    text = path.read_text().replace(str(path.with_suffix("")), "OUTPUT")
    rows = json.loads(text)["files"]
    for row in rows:
        for key in ("seconds", "output", "output_bytes"):
            row.pop(key, None)
        row.get("extra", {}).get("video", {}).pop("fps", None)
        row.get("extra", {}).pop("ray_node", None)
    return rows


def _run(tree: Path, args: list[str], out: Path, env: dict[str, str]) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        str(tree / "run.py"),
        *args,
        "-o",
        str(out),
        "-q",
        "--summary",
        str(out.parent / f"{out.name}.json"),
    ]
    done = subprocess.run(
        command, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True
    )
    if done.returncode not in (0, 1):  # 1: some files failed, as a case may mean them to
        raise SystemExit(f"{tree.name}: {' '.join(args)} failed:\n{done.stderr}")
    return done.returncode


def _compare(old: Path, new: Path) -> list[str]:
    """What differs between two output folders ('' when nothing does)."""
    problems = []
    names = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    names_new = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    if names != names_new:
        problems.append(f"files differ: {sorted(map(str, names ^ names_new))}")
    for name in sorted(names & names_new):
        if name.suffix == ".html" or name.name == "results.json":  # dates and times inside
            continue
        if name.suffix in VIDEOS:
            same = _packets(old / name) == _packets(new / name)
        else:
            same = (old / name).read_bytes() == (new / name).read_bytes()
        if not same:
            problems.append(f"{name} differs")
    if _rows(old.parent / f"{old.name}.json") != _rows(new.parent / f"{new.name}.json"):
        problems.append("summary rows differ")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--against", required=True, metavar="REV", help="the commit to compare with"
    )
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bgswap-identical-") as tmp:
        work = Path(tmp)
        caches = {
            "TORCH_HOME": "torch",
            "YOLO_CONFIG_DIR": "ultralytics",
            "HF_HOME": "hf",
            "BACKGROUNDSWAP_HOME": "bgswap",
            "U2NET_HOME": "u2net",
        }
        for variable, name in caches.items():
            os.environ[variable] = str(work / "caches" / name)
        os.environ["YOLO_OFFLINE"] = "1"
        old = work / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.against],
            check=True,
        )
        try:
            inputs = _inputs(work / "inputs")
            failed = 0
            for name in args.case or CASES:
                case = [part.format(**inputs) for part in shlex.split(CASES[name])]
                outs, codes = [], []
                for tree, label in ((old, "old"), (ROOT, "new")):
                    out = work / "outputs" / f"{len(outs)}-{name.replace(' ', '_')}" / label
                    codes.append(_run(tree, case, out, dict(os.environ)))
                    outs.append(out)
                problems = _compare(*outs)
                if codes[0] != codes[1]:
                    problems.append(f"exit codes differ: {codes[0]} then {codes[1]}")
                files = sum(1 for p in outs[1].rglob("*") if p.is_file())
                print(f"{'same' if not problems else 'DIFFERENT'}: {name} ({files} files)")
                for problem in problems:
                    print(f"    {problem}")
                failed += bool(problems)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)])
    print(f"{len(args.case or CASES) - failed} of {len(args.case or CASES)} cases identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
