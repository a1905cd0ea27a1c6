"""The salient-object backend, on tiny ONNX graphs built here with the real models' input layout,
saved under the real file names in the test cache and loaded by the same code as real ones.

The graphs compute a known function of their input (channel 0, as the network receives it), so
each family's resize, scaling, mean/std, output choice and sigmoid are checked against values
worked out by hand from the authors' code: a mutation of any of them fails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from operations.models import models_home
from operations.segmenters.base import SegmenterError
from operations.segmenters.salient import SalientSegmenter, rembg_dir
from tests.helpers import BACKGROUND, ROOT, cli
from tests.models import write_graph

pytest.importorskip("onnxruntime", reason="the salient extra is not installed")
onnx = pytest.importorskip("onnx", reason="onnx (one of the tests' tools) is not installed")
TensorProto = onnx.TensorProto

LEFT, RIGHT = (140, 250, 60), (170, 90, 30)  # the photo's two halves; 250 is its maximum


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# Channel 0 (red) of each half as each family's network receives it, from the authors' code:
# U²-Net divides by the image's maximum, then ImageNet mean/std; ISNet /255, mean 0.5, std 1;
# BiRefNet /255, ImageNet mean/std, and its output is logits (sigmoid).
EXPECTED = {
    "u2net": [(r / 250 - 0.485) / 0.229 for r in (140, 170)],
    "isnet-general-use": [r / 255 - 0.5 for r in (140, 170)],
    "birefnet-general": [_sigmoid((r / 255 - 0.485) / 0.229) for r in (140, 170)],
}
SIZES = {"u2net": 320, "isnet-general-use": 1024, "birefnet-general": 1024}


def _photo(height: int = 30, width: int = 50) -> np.ndarray:
    photo = np.empty((height, width, 3), np.uint8)
    photo[:, : width // 2] = LEFT
    photo[:, width // 2 :] = RIGHT
    return photo


@pytest.fixture
def cached(tmp_path: Path):
    """Writes a tiny graph into the model cache under a real model's file name."""
    written = []

    def make(name: str, **settings) -> Path:
        side = SIZES.get(name, 320)
        path = write_graph(models_home() / f"{name}.onnx", (side, side), **settings)
        written.append(path)
        return path

    yield make
    for path in written:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_family_is_fed_and_read_as_its_authors_do(cached, name: str) -> None:
    cached(name)
    segmenter = SalientSegmenter(name, offline=True, device="cpu")
    assert segmenter.input_size == (SIZES[name], SIZES[name])
    alpha = segmenter.predict(_photo())
    assert alpha.shape == (30, 50) and alpha.dtype == np.float32  # back at the photo's size
    left, right = EXPECTED[name]
    np.testing.assert_allclose(alpha[:, :20], left, atol=2e-3)  # the left half stays left
    np.testing.assert_allclose(alpha[:, 30:], right, atol=2e-3)


def test_a_users_file_gets_its_input_size_from_the_graph(tmp_path: Path) -> None:
    path = write_graph(tmp_path / "mine.onnx", (48, 64), batch=1, gain=4.0)
    segmenter = SalientSegmenter(str(path), device="cpu")
    assert segmenter.input_size == (64, 48) and not segmenter.batched
    alpha = segmenter.predict(_photo())
    # Unknown family: ImageNet statistics on [0, 1] pixels; the map leaves [0, 1], so it is
    # read as logits.
    for region, red in ((alpha[:, :20], 140), (alpha[:, 30:], 170)):
        np.testing.assert_allclose(region, _sigmoid(4 * (red / 255 - 0.485) / 0.229), atol=2e-3)


def test_a_free_batch_axis_is_one_call_and_equals_one_by_one(cached, monkeypatch) -> None:
    cached("u2net")
    segmenter = SalientSegmenter("u2net", offline=True, device="cpu")
    assert segmenter.batched
    calls = []
    run = segmenter.session.run
    monkeypatch.setattr(segmenter.session, "run", lambda *a: calls.append(1) or run(*a))
    photos = [_photo(), _photo(40, 20)[:, ::-1].copy(), _photo(17, 33)]
    batched = segmenter.predict_batch(photos)
    assert len(calls) == 1
    for photo, alpha in zip(photos, batched, strict=True):
        np.testing.assert_allclose(alpha, segmenter.predict(photo), atol=1e-6)


def test_a_fixed_batch_axis_is_called_once_per_photo(tmp_path: Path, monkeypatch) -> None:
    path = write_graph(tmp_path / "u2net.onnx", (320, 320), batch=1)
    segmenter = SalientSegmenter(str(path), device="cpu")
    calls = []
    run = segmenter.session.run
    monkeypatch.setattr(segmenter.session, "run", lambda *a: calls.append(1) or run(*a))
    assert len(segmenter.predict_batch([_photo(), _photo()])) == 2 and len(calls) == 2


def test_a_half_precision_graph_runs_as_fp32_on_the_cpu(tmp_path: Path) -> None:
    path = write_graph(tmp_path / "isnet-general-use.onnx", (64, 64), dtype=TensorProto.FLOAT16)
    segmenter = SalientSegmenter(str(path), device="cpu")
    assert segmenter.dtype == np.float32  # the CPU's graph: fp32 throughout, the map alone
    assert [o.name for o in segmenter.session.get_outputs()] == ["d0"]
    alpha = segmenter.predict(_photo())
    assert alpha.dtype == np.float32
    np.testing.assert_allclose(alpha[:, :20], EXPECTED["isnet-general-use"][0], atol=2e-3)
    derived = sorted((models_home() / "derived").glob("isnet-general-use-*.cpu0p.onnx"))
    assert derived and derived[-1].stat().st_size > 0


def test_the_cpus_graph_keeps_only_what_feeds_the_map(tmp_path: Path) -> None:
    from operations.segmenters.onnx_graphs import _derived, cpu_graph

    path = write_graph(tmp_path / "u2netp.onnx", (32, 32))
    earlier = _derived(path, "cpu0.onnx")  # an unpruned graph an earlier version made
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_bytes(b"old")
    graph = onnx.load(str(cpu_graph(path))).graph
    # The side output's Neg fed nothing read: ONNX Runtime would still run it every time.
    assert [node.op_type for node in graph.node] == ["Slice", "Mul"]
    assert sorted(t.name for t in graph.initializer) == ["axes", "ends", "gain", "starts"]
    assert not earlier.exists()  # superseded, not left taking the space


def test_a_weight_of_a_dropped_output_goes_with_it_even_when_listed_as_an_input(
    tmp_path: Path,
) -> None:
    from onnx import TensorProto, helper

    from operations.segmenters.onnx_graphs import cpu_graph

    model = onnx.load(str(write_graph(tmp_path / "old.onnx", (32, 32))))
    graph = model.graph
    # An older export: the side output scaled by a weight of its own, every weight also
    # listed among the inputs.
    graph.node[2].output[0] = "neg"
    graph.node.append(helper.make_node("Mul", ["neg", "side_w"], ["d1"]))
    graph.initializer.append(helper.make_tensor("side_w", TensorProto.FLOAT, [], [3.0]))
    for tensor in graph.initializer:
        dims = list(tensor.dims)
        graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, dims))
    path = tmp_path / "u2netp.onnx"
    onnx.save(model, str(path))
    derived = onnx.load(str(cpu_graph(path))).graph
    assert "side_w" not in {t.name for t in derived.initializer}
    assert "side_w" not in {i.name for i in derived.input}  # not an input to feed now
    segmenter = SalientSegmenter(str(path), device="cpu")
    assert [i.name for i in segmenter.session.get_inputs()][:1] == ["input.1"]
    assert segmenter.predict(_photo()).shape == (30, 50)


def test_a_prepared_graph_that_does_not_run_gives_way_to_the_file(tmp_path: Path, caplog) -> None:
    from operations.segmenters.onnx_graphs import _derived, cpu_graph

    path = write_graph(tmp_path / "u2netp.onnx", (32, 32))
    made = cpu_graph(path)
    made.write_bytes(b"not a graph")  # as if made wrong
    segmenter = SalientSegmenter(str(path), device="cpu")
    assert segmenter.predict(_photo()).shape == (30, 50)  # the file as it is
    assert "runs as it is" in caplog.text
    assert not made.exists() and _derived(path, "cpu0p-native").is_file()
    assert cpu_graph(path) == path  # remembered


def test_the_cpus_graph_is_made_again_when_the_weights_change(tmp_path: Path) -> None:
    import os

    from operations.segmenters.onnx_graphs import cpu_graph

    path = write_graph(tmp_path / "u2netp.onnx", (32, 32))
    first = cpu_graph(path)
    assert first != path and [o.name for o in onnx.load(str(first)).graph.output] == ["d0"]
    assert cpu_graph(path) == first  # made once
    write_graph(path, (32, 32), gain=2.0)  # new weights under the same name
    os.utime(path, ns=(1, 1))
    second = cpu_graph(path)
    assert second != first and second.is_file()
    session = SalientSegmenter(str(path), device="cpu")
    np.testing.assert_allclose(  # the new weights' map (gain 2), from the new graph
        session._maps(session.preprocess(_photo())[None])[0],
        np.clip(2 * session.preprocess(_photo())[0], 0, 1),
        atol=1e-6,
    )


def test_a_graph_with_nothing_to_change_runs_as_it_is(tmp_path: Path, monkeypatch) -> None:
    import sys

    from operations.segmenters.onnx_graphs import cpu_graph

    single = tmp_path / "one.onnx"
    model = onnx.load(str(write_graph(tmp_path / "two.onnx", (32, 32))))
    del model.graph.output[1:]
    onnx.save(model, str(single))
    assert cpu_graph(single) == single  # fp32 and one output: nothing to make
    assert cpu_graph(single) == single  # (remembered, not read again)
    two = write_graph(tmp_path / "three.onnx", (32, 32))
    monkeypatch.setitem(sys.modules, "onnx", None)  # no onnx package: the file as it is
    assert cpu_graph(two) == two


def test_rembgs_model_folder_is_used_as_it_is(monkeypatch, tmp_path: Path) -> None:
    # A folder of its own: the session's holds the real weights other tests use.
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    write_graph(rembg_dir() / "u2netp.onnx", (320, 320))
    segmenter = SalientSegmenter("u2netp", offline=True, device="cpu")
    assert segmenter.path == tmp_path / "u2net" / "u2netp.onnx"


def test_missing_weights_name_the_file_the_folder_and_the_download() -> None:
    with pytest.raises(SegmenterError) as info:
        SalientSegmenter("birefnet-portrait", offline=True, device="cpu")
    message = str(info.value)
    assert str(models_home() / "birefnet-portrait.onnx") in message
    assert "download salient-birefnet-portrait" in message and "BACKGROUNDSWAP_HOME" in message
    assert "\n" not in message


def test_a_named_gpu_without_its_provider_is_an_error_not_a_cpu_run(cached) -> None:
    cached("u2net")
    with pytest.raises(SegmenterError, match="onnxruntime-gpu"):
        SalientSegmenter("u2net", offline=True, device="cuda")


def test_cli_batches_and_finds_the_cached_model(
    cached, photo_dir: Path, tmp_path: Path, capsys
) -> None:
    # The plain run of every backend is tests/test_contract.py's; here, batches and the cache.
    cached("isnet-general-use")
    out = tmp_path / "out"
    args = ["-b", BACKGROUND, "--mode", "3", "--offline", "--batch-size", "2"]
    code, err = cli(capsys, "-i", photo_dir, "-o", out, *args)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    code, err = cli(capsys, "download", "salient")
    assert code == 0 and "already cached" in err


def test_cli_errors_are_one_line(tmp_path: Path, photo_dir: Path, capsys) -> None:
    corrupt = tmp_path / "broken.onnx"
    corrupt.write_bytes(b"\x08\x07 not a protobuf at all")
    base = ["-i", photo_dir, "-o", tmp_path / "out", "-b", BACKGROUND, "--mode", "salient"]
    cases = [
        ([*base, "--salient-model", "u3net"], "choose from isnet-general-use, u2net"),
        ([*base, "--salient-model", corrupt], "is not an ONNX model"),
        ([*base, "--salient-model", "u2net", "--offline"], "download salient-u2net"),
        ([*base, "--device", "mps"], "runs on cpu, cuda only"),
    ]
    for args, expected in cases:
        code, err = cli(capsys, *args)
        assert code == 2 and expected in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_a_salient_run_never_loads_numba(tmp_path: Path, photo_dir: Path) -> None:
    import subprocess
    import sys

    from operations.stages import matting

    matting.warm_up()  # compiled once on this machine (a first run compiles the kernels)
    graph = write_graph(tmp_path / "mine.onnx", (32, 32))
    code = (
        "import sys, run\n"
        f"args = ['-i', {str(photo_dir)!r}, '-o', {str(tmp_path / 'out')!r}, '-b', 'white',\n"
        f"        '--mode', 'salient', '--salient-model', {str(graph)!r}, '-q']\n"
        "assert run.main(args) == 0\n"
        "assert 'numba' not in sys.modules  # its import and kernels cost 0.3-0.5 s a run\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 2
