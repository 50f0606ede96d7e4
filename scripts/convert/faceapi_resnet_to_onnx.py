#!/usr/bin/env python3
"""Converts face-api's face recognition network (the npm package @vladmandic/face-api,
`model/face_recognition_model`: dlib's ResNet-34 face embedder ported to TensorFlow.js, as a
weight manifest without a graph) to ONNX, with numpy and onnx only.

Usage: faceapi_resnet_to_onnx.py <package's model dir> <out.onnx>

The graph is face-api's FaceRecognitionNet.forwardInput (src/faceRecognitionNet), rebuilt from
the manifest's tensor names and shapes: the input (RGB 0-255, NHWC, 150 x 150) minus the mean
(122.782, 117.001, 104.298), divided by 255; a 7 x 7 convolution with stride 2 and a 3 x 3 max
pool; residual blocks of two 3 x 3 convolutions, four of them reducing (a stride-2 convolution
beside a 2 x 2 average pool padded with zero channels, the convolution padded with a zero row
and column where the pool is larger); the mean over the image; a 256 x 128 matrix. Each
convolution is followed by its bias and a scale layer (x * weights + biases), folded into the
convolution's weights here. The output is the 128-value descriptor, compared by Euclidean
distance (dlib's threshold: 0.6). Weights are stored uint8-quantised and widened as
TensorFlow.js does. Deterministic: the same package gives the same bytes.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tfjs_graph_to_onnx import load_weights

SIZE = 150
MEAN_RGB = [122.782, 117.001, 104.298]
# (name, residual block or the first convolution, reducing)
LAYERS = [("conv32_down", "first")] + [(f"conv32_{i}", False) for i in (1, 2, 3)] + [
    ("conv64_down", True)] + [(f"conv64_{i}", False) for i in (1, 2, 3)] + [
    ("conv128_down", True)] + [(f"conv128_{i}", False) for i in (1, 2)] + [
    ("conv256_down", True)] + [(f"conv256_{i}", False) for i in (1, 2)] + [("conv256_down_out", True)]


class Graph:
    def __init__(self, weights):
        self.weights, self.nodes, self.initializers = weights, [], []

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def conv(self, x, prefix, stride, relu, same):
        """Convolution + bias + scale layer (folded), NCHW; returns (tensor, output side)."""
        w = self.weights[f"{prefix}/conv/filters"]  # HWIO
        scale = self.weights[f"{prefix}/scale/weights"].astype(np.float64)
        shift = self.weights[f"{prefix}/scale/biases"].astype(np.float64)
        bias = self.weights[f"{prefix}/conv/bias"].astype(np.float64)
        kernel = (w.astype(np.float64) * scale).transpose(3, 2, 0, 1).astype(np.float32)  # OIHW
        attrs = dict(kernel_shape=list(kernel.shape[2:]), strides=[stride, stride])
        if same:
            attrs["auto_pad"] = "SAME_UPPER"
        out = self.node("Conv", [x, self.const(f"{prefix}/W", kernel),
                                 self.const(f"{prefix}/B", (bias * scale + shift).astype(np.float32))],
                        f"{prefix}/conv", **attrs)
        return self.node("Relu", [out], f"{prefix}/relu") if relu else out

    def residual(self, x, prefix, side, channels, reducing):
        if not reducing:
            out = self.conv(x, f"{prefix}/conv1", 1, True, True)
            out = self.conv(out, f"{prefix}/conv2", 1, False, True)
            return self.node("Relu", [self.node("Add", [out, x], f"{prefix}/add")], f"{prefix}/out"), side, channels
        out = self.conv(x, f"{prefix}/conv1", 2, True, False)
        out = self.conv(out, f"{prefix}/conv2", 1, False, True)
        out_side = (side - 3) // 2 + 1
        out_channels = self.weights[f"{prefix}/conv2/conv/filters"].shape[3]
        pooled = self.node("AveragePool", [x], f"{prefix}/pool", kernel_shape=[2, 2], strides=[2, 2])
        pooled_side = side // 2
        if pooled_side != out_side:  # face-api adds a zero row at the bottom and a zero column at the right
            pads = self.const(f"{prefix}/out_pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64))
            out = self.node("Pad", [out, pads], f"{prefix}/padded", mode="constant")
        if out_channels != channels:  # and zero channels after the pool's
            pads = self.const(f"{prefix}/pool_pads",
                              np.array([0, 0, 0, 0, 0, out_channels - channels, 0, 0], dtype=np.int64))
            pooled = self.node("Pad", [pooled, pads], f"{prefix}/pool_padded", mode="constant")
        added = self.node("Add", [pooled, out], f"{prefix}/add")
        return self.node("Relu", [added], f"{prefix}/out"), pooled_side, out_channels


def convert(models_dir):
    manifest = json.load(open(os.path.join(models_dir, "face_recognition_model-weights_manifest.json")))
    g = Graph(load_weights(models_dir, manifest))
    x = g.node("Transpose", ["input"], "input_nchw", perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.const("mean", np.array(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1))], "centred")
    x = g.node("Div", [x, g.const("255", np.array(255, dtype=np.float32))], "normalised")
    side, channels = SIZE, 3
    for name, kind in LAYERS:
        if kind == "first":
            x = g.conv(x, name, 2, True, False)
            x = g.node("MaxPool", [x], f"{name}/maxpool", kernel_shape=[3, 3], strides=[2, 2])
            side, channels = ((side - 7) // 2 + 1 - 3) // 2 + 1, g.weights[f"{name}/conv/filters"].shape[3]
        else:
            x, side, channels = g.residual(x, name, side, channels, kind)
    x = g.node("ReduceMean", [x], "pooled", axes=[2, 3], keepdims=0)
    g.node("MatMul", [x, g.const("fc", g.weights["fc"].astype(np.float32))], "embedding")
    graph = helper.make_graph(
        g.nodes, "faceapi_face_recognition",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 128])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="ims faceapi_resnet_to_onnx")
    model.ir_version = 8
    helper.set_model_props(model, {"source": "npm @vladmandic/face-api@1.7.15 model/face_recognition_model"})
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[2], "wb") as f:
        f.write(convert(sys.argv[1]).SerializeToString(deterministic=True))
