"""Salient models' graphs as the CPU runs them fastest: made fp32 and cut to the one output we
read, once, cached.

rembg's ISNet file stores its weights in fp16 and computes in fp16 behind a Cast of its input.
ONNX Runtime's CPU kernels are fp32: the fp16 graph runs 8–10 % slower there (1.34 s against
1.22 s a 1024² photo on 2 cores, ``benchmarks/bench_rembg.py``'s machine) and its arena holds
more. So on the CPU the graph is converted once — every fp16 weight, constant, cast and declared
type made fp32, which computes the same network at the CPU's own precision. U²-Net's and
ISNet's graphs also end in six side outputs (deep supervision for training), each enlarged to
the input's size and put through a sigmoid on every run, though only the first is the map:
the others are dropped from the graph's outputs, and so are the nodes and weights that fed
only them (ONNX Runtime keeps and runs a node whose output nobody reads: measured, ISNet's
five dropped side outputs still cost 7 % of every run until their nodes were gone). The
result is kept in our model folder (``$BACKGROUNDSWAP_HOME/models/derived``), named after
the source's name, size and modification time and the output kept: new weights under the same
name make a new file. A graph with nothing to change is remembered as such (an empty marker
file), not read again.

The conversion needs the ``onnx`` package (the salient extra installs it); without it, or when
the conversion fails, the file is used as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from operations.models import models_home

log = logging.getLogger(__name__)


def _derived(source: Path, kind: str) -> Path:
    info = source.stat()
    return models_home() / "derived" / f"{source.stem}-{info.st_size}-{info.st_mtime_ns}.{kind}"


def cpu_graph(source: Path, output: int = 0) -> Path:
    """The graph to give the CPU for ``source``, whose map is its output ``output``: fp32, with
    that output alone, when ``source`` is otherwise; else ``source`` itself."""
    # "p": pruned of what fed the other outputs (files made before that are not reused).
    converted = _derived(source, f"cpu{output}p.onnx")
    native = _derived(source, f"cpu{output}p-native")
    if converted.is_file():
        return converted
    if native.is_file():
        return source
    try:
        import onnx
    except ImportError:
        return source
    try:
        model = onnx.load(str(source))
        changed = as_fp32(model)
        changed |= only_output(model, output)
        if not changed:
            _write(native, b"")
            return source
        _write(converted, model.SerializeToString())
        # The same weights' graph as an earlier version made it (not pruned): superseded.
        with contextlib.suppress(OSError):
            _derived(source, f"cpu{output}.onnx").unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the file as it is
        log.warning("could not prepare %s for the CPU (%s): it runs as it is", source.name, exc)
        return source
    return converted


def not_runnable(source: Path, output: int = 0) -> None:
    """The graph :func:`cpu_graph` made for ``source`` could not be run: ``source`` is run as
    it is from now on (remembered, not made again)."""
    with contextlib.suppress(OSError):
        _derived(source, f"cpu{output}p.onnx").unlink(missing_ok=True)
        _write(_derived(source, f"cpu{output}p-native"), b"")


def only_output(model: object, output: int) -> bool:
    """Keep the graph's output ``output`` alone, in place. Returns whether others were there."""
    outputs = model.graph.output  # type: ignore[attr-defined]
    if len(outputs) <= 1 or output >= len(outputs):
        return False
    kept = outputs[output]
    kept_copy = type(kept)()
    kept_copy.CopyFrom(kept)
    del outputs[:]
    outputs.append(kept_copy)
    _prune(model.graph)  # type: ignore[attr-defined]
    return True


def _prune(graph: object) -> None:
    """Drop, in place, the nodes, weights and declared types the graph's outputs do not need."""
    nodes = graph.node  # type: ignore[attr-defined]
    producer = {name: node for node in nodes for name in node.output}
    needed = {value.name for value in graph.output}  # type: ignore[attr-defined]
    pending, used = list(needed), set()
    while pending:  # backwards from the outputs (a graph's nodes need not be in order)
        node = producer.get(pending.pop())
        if node is None or id(node) in used:
            continue
        used.add(id(node))
        for name in node.input:
            if name and name not in needed:
                needed.add(name)
                pending.append(name)
    from onnx import AttributeProto

    # Subgraphs (If, Loop) may read outer names: a graph with any is left whole.
    subgraphs = (AttributeProto.GRAPH, AttributeProto.GRAPHS)
    if any(attribute.type in subgraphs for node in nodes for attribute in node.attribute):
        return
    weights = {tensor.name for tensor in graph.initializer}  # type: ignore[attr-defined]
    for field, wanted in (
        (nodes, lambda node: id(node) in used),
        (graph.initializer, lambda tensor: tensor.name in needed),  # type: ignore[attr-defined]
        (graph.value_info, lambda value: value.name in needed),  # type: ignore[attr-defined]
        # Older exports list every weight among the inputs too: a dropped one's entry would be
        # an input the caller must feed. The graph's own inputs all stay.
        (
            graph.input,  # type: ignore[attr-defined]
            lambda value: value.name not in weights or value.name in needed,
        ),
    ):
        kept = [item for item in field if wanted(item)]
        if len(kept) < len(field):
            del field[:]
            field.extend(kept)


def as_fp32(model: object) -> bool:
    """Make an ONNX model's fp16 weights, constants, casts and declared types fp32, in place.

    Returns:
        Whether it held anything fp16.
    """
    import numpy as np
    from onnx import TensorProto, numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    half, single = TensorProto.FLOAT16, TensorProto.FLOAT
    changed = False

    def widened(tensor: TensorProto) -> TensorProto:
        return numpy_helper.from_array(
            numpy_helper.to_array(tensor).astype(np.float32), tensor.name
        )

    for tensor in graph.initializer:
        if tensor.data_type == half:
            tensor.CopyFrom(widened(tensor))
            changed = True
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == half:
                attribute.i = single
                changed = True
            elif attribute.name == "value" and attribute.t.data_type == half:
                attribute.t.CopyFrom(widened(attribute.t))
                changed = True
    for value in (*graph.value_info, *graph.input, *graph.output):
        if value.type.tensor_type.elem_type == half:
            value.type.tensor_type.elem_type = single
            changed = True
    return changed


def _write(path: Path, data: bytes) -> None:
    """``data`` at ``path``, whole or not at all (another process may be writing it too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
