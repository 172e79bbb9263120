"""Concrete tensor shapes for every value in an ONNX graph, given sizes for its symbolic input dimensions.

The graph inputs' symbolic dimensions (``batch``, ``sequence``) are replaced by the given sizes, then ONNX
shape inference (with data propagation, so ``Shape → Reshape`` chains resolve) fills in the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgedistill.errors import InputError


@dataclass(frozen=True)
class TensorShape:
    shape: tuple[int, ...]
    itemsize: int  # bytes per element of the graph's own type (float32: 4, int64: 8)
    is_float: bool

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


def bind_inputs(model: onnx.ModelProto, dims: dict[str, int], shapes: dict[str, list[int]]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs have only fixed dimensions.

    ``shapes`` gives whole input shapes by input name; ``dims`` gives sizes for symbolic dimension names.

    Raises:
        InputError: an input dimension is still unknown (names it and the option to pass), or a given
            shape contradicts a fixed dimension.
    """
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    # Shapes recorded at export are symbolic; drop them so inference recomputes them from the bound inputs.
    del bound.graph.value_info[:]
    for out in bound.graph.output:
        out.type.tensor_type.ClearField("shape")
    initializers = {i.name for i in bound.graph.initializer}
    for value in bound.graph.input:
        if value.name in initializers:
            continue
        tensor_dims = value.type.tensor_type.shape.dim
        given = shapes.get(value.name)
        if given is not None and len(given) != len(tensor_dims):
            raise InputError(f"input '{value.name}' has {len(tensor_dims)} dimensions; the given shape {given} has "
                             f"{len(given)}")
        for axis, d in enumerate(tensor_dims):
            bind_dim(value.name, axis, d, dims, given)
    return bound


def check_dim_names(model: onnx.ModelProto, dims: dict[str, int]) -> None:
    """Raise InputError for a size given to a dimension name the graph's inputs do not have (a typo)."""
    initializers = {i.name for i in model.graph.initializer}
    names = sorted({d.dim_param for v in model.graph.input if v.name not in initializers
                    for d in v.type.tensor_type.shape.dim if d.dim_param})
    for name in dims:
        if name not in names:
            from edgedistill.config import suggest

            hint = suggest(name, names) if names else "its inputs have no symbolic dimensions"
            raise InputError(f"--dim {name}: the model has no dimension '{name}'; {hint}")


def bind_dim(name: str, axis: int, d: onnx.TensorShapeProto.Dimension, dims: dict[str, int],
             given: list[int] | None) -> None:
    if d.HasField("dim_value"):
        if given is not None and given[axis] != d.dim_value:
            raise InputError(f"input '{name}' axis {axis} is fixed to {d.dim_value}; the given shape has {given[axis]}")
        return
    size = given[axis] if given is not None else dims.get(d.dim_param)
    if size is None:
        label = f"'{d.dim_param}'" if d.dim_param else "(unnamed)"
        hint = f"--dim {d.dim_param}=N" if d.dim_param else f"--shape {name}=..."
        raise InputError(f"input '{name}' axis {axis} {label} has no size; pass {hint}")
    d.dim_value = int(size)


def infer_shapes(model: onnx.ModelProto, dims: dict[str, int] | None = None,
                 shapes: dict[str, list[int]] | None = None) -> dict[str, TensorShape]:
    """Every value's fixed shape (values whose shape stays unknown are left out).

    Raises:
        InputError: as :func:`bind_inputs`, or shape inference rejects the graph.
    """
    bound = bind_inputs(model, dims or {}, shapes or {})
    try:
        inferred = onnx.shape_inference.infer_shapes(bound, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError) as err:
        raise InputError(f"ONNX shape inference failed: {str(err).strip().splitlines()[0]}") from None
    graph = inferred.graph
    if any(fixed_shape(v) is None for v in graph.value_info) or len(graph.value_info) < len(graph.node):
        graph = observed_shapes(inferred) or graph
    out: dict[str, TensorShape] = {}
    for init in graph.initializer:
        out[init.name] = TensorShape(tuple(init.dims), itemsize(init.data_type), init.data_type in FLOAT_TYPES)
    for value in [*graph.input, *graph.value_info, *graph.output]:
        shape = fixed_shape(value)
        if shape is not None and value.name not in out:
            elem = value.type.tensor_type.elem_type
            out[value.name] = TensorShape(shape, itemsize(elem), elem in FLOAT_TYPES)
    return out


def fixed_shape(value: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = tensor.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(d.dim_value for d in dims)


def itemsize(elem_type: int) -> int:
    if elem_type == onnx.TensorProto.UNDEFINED:
        return 4
    return int(onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)


def observed_shapes(inferred: onnx.ModelProto) -> onnx.GraphProto | None:
    """The graph with every value's shape as observed by running it once in ONNX Runtime on dummy inputs.

    Static inference loses track of shapes that flow through ``Shape → Squeeze → Slice`` chains (dynamo exports
    of transformers); one run settles them exactly. Returns None when the graph cannot run (e.g. weights given
    by shape only), leaving the statically inferred shapes.
    """
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(inferred)
    known = {o.name for o in probe.graph.output}
    typed = {v.name: v.type.tensor_type.elem_type for v in probe.graph.value_info}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in known:  # an output without a type (a contrib op's): ONNX Runtime infers it
                value = (onnx.helper.make_tensor_value_info(name, typed[name], None) if typed.get(name)
                         else onnx.ValueInfoProto(name=name))
                probe.graph.output.append(value)
                known.add(name)
    weights = {i.name for i in probe.graph.initializer}
    feeds = {v.name: dummy_input(v) for v in probe.graph.input if v.name not in weights}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        values = session.run(None, feeds)
    except Exception:  # noqa: BLE001 — any failure means "cannot observe"; static shapes remain
        return None
    graph = onnx.GraphProto()
    graph.CopyFrom(inferred.graph)
    del graph.value_info[:]
    for out, value in zip(session.get_outputs(), values):
        elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
        graph.value_info.append(onnx.helper.make_tensor_value_info(out.name, elem, list(value.shape)))
    return graph


def dummy_input(value: onnx.ValueInfoProto) -> np.ndarray:
    """Zeros-and-ones input of the value's bound shape and type (token ids 1, masks all ones)."""
    shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
    return np.ones(shape, dtype=dtype)
