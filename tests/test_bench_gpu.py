"""benchmarks/bench_gpu.py, run as it will be on a lent GPU, but on the CPU and ``--quick``: every
item's code path runs (the real architectures' builders, the tool's loaders, the command line),
so the script cannot rot before the day a GPU is there to run it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

# Looked up, not imported: importing Ultralytics here would leave its PIL.Image.open wrapper
# (which pip-installs a package on an unknown file) in this process for every later test.
_MISSING = [
    module
    for module in ("torch", "onnxruntime", "diffusers", "ultralytics", "mediapipe")
    if importlib.util.find_spec(module) is None
]
if _MISSING:
    pytest.skip(
        f"needs {', '.join(_MISSING)} (the GPU benchmark's models)", allow_module_level=True
    )

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
ITEMS = [
    "mediapipe",
    "salient",
    "cli-salient",
    "deeplab",
    "cli-deeplab",
    "yolo",
    "style",
    "sd-txt2img",
    "sd-inpaint",
]


def _run(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / "gpu.json"
    argv = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--json", str(report)]
    done = subprocess.run(
        [*argv, *options], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(report.read_text())


def test_quick_cpu_run_measures_every_item(tmp_path: Path) -> None:
    done, report = _run(tmp_path)
    rows = report["rows"]
    assert report["device"] == "cpu" and report["not_reached"] == []
    assert [r["item"] for r in rows if r["item"] in ITEMS] == [r["item"] for r in rows]
    assert sorted({r["item"] for r in rows}, key=ITEMS.index) == ITEMS  # each, in priority order
    measured = [r for r in rows if r["rate"] is not None]
    unmeasured = [r for r in rows if r["rate"] is None]
    # The only rows without a figure are the models no graph can be built for, saying so.
    assert {r["model"] for r in unmeasured} == {"birefnet-general", "birefnet-general-lite"}
    assert all(r["note"].startswith("not measured") for r in unmeasured)
    for row in measured:
        assert row["rate"] > 0 and row["ms_per_image"] > 0 and row["peak_mib"] is not None, row
        assert "failed" not in row["note"], row
    # Batched salient rows, from the fp32 graph and its fp16 conversion, through ONNX Runtime.
    salient = {(r["precision"], r["batch"]) for r in measured if r["item"] == "salient"}
    assert salient == {("fp32", 1), ("fp32", 2), ("fp16", 1), ("fp16", 2)}
    assert {r["engine"] for r in measured if r["item"] == "salient"} == {"onnxruntime"}
    # The tool fed each graph float32: on the CPU an fp16 graph runs as fp32 (a GPU keeps the
    # fp16 one; operations/segmenters/onnx_graphs.py).
    for row in (r for r in measured if r["item"] == "salient"):
        assert row["note"] == "float32 in, CPUExecutionProvider", row
    # The command line ran end to end and its own rate was read.
    cli = [r for r in measured if r["item"].startswith("cli-")]
    assert len(cli) == 2 and all("start-up" in r["note"] for r in cli)
    # Diffusion in steps/s, and its ms/image the whole image's: steps ÷ rate.
    sd = [r for r in measured if r["item"].startswith("sd-")]
    assert len(sd) == 2 and all(r["unit"] == "steps/s" for r in sd)
    for row in sd:
        assert row["ms_per_image"] == pytest.approx(1000 * 3 / row["rate"]), row
    # One table at the end, every row in it.
    table = done.stdout.split("\n\n")[-1]
    assert table.splitlines()[0].startswith("item") and len(table.splitlines()) >= len(rows) + 1
    # Nothing of the run is left behind (its caches were a temporary folder).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu.json"]


def test_a_spent_budget_stops_cleanly_and_says_what_was_not_reached(tmp_path: Path) -> None:
    done, report = _run(tmp_path, "--budget", "0")
    assert report["rows"] == [] and report["not_reached"] == ITEMS
    assert "not reached: mediapipe, salient" in done.stdout
