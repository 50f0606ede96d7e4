#!/usr/bin/env python3
"""Converts the nsfwjs MobileNetV2 model (a TensorFlow.js layers model shipped in the npm
package as browserified `.min.js` modules) to ONNX, with numpy and onnx only.

Usage: nsfwjs_to_onnx.py <package dir>/dist/models/mobilenet_v2 <out.onnx>

The model topology is a Keras functional model; each layer becomes the equivalent ONNX
operators in NCHW (the graph input stays NHWC, [batch, 224, 224, 3], as nsfwjs feeds it):
ZeroPadding2D -> Pad, Conv2D -> Conv, DepthwiseConv2D -> grouped Conv, BatchNormalization ->
BatchNormalization, ReLU(max 6) -> Clip, Add -> Add, AveragePooling2D -> AveragePool,
Flatten -> Flatten, Dense -> MatMul + Add (+ Relu / Softmax), Dropout -> nothing. Weights are
stored uint8-quantised (value = q * scale + min) and are dequantised to float32. The output is
deterministic: the same package gives the same bytes.
"""
import base64
import re
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def js_object(text):
    """The value assigned to `module.exports` in a browserified module, as Python data."""
    found = re.search(r"\[function\(\w+,(\w+),\w+\)\{\1\.exports=", text)
    if not found:
        sys.exit("no module.exports assignment found")
    body = text[found.end():]
    if body.startswith('"'):
        return body[1:body.index('"', 1)]
    depth, end = 0, 0
    in_string = False
    for i, ch in enumerate(body):
        if in_string:
            in_string = ch != '"' or body[i - 1] == "\\"
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    literal = body[:end]
    # Quote bare keys and give leading-dot numbers their zero, outside strings.
    parts = re.split(r'("(?:[^"\\]|\\.)*")', literal)
    for k in range(0, len(parts), 2):
        p = parts[k]
        p = re.sub(r"([{,])([A-Za-z_$][\w$]*):", r'\1"\2":', p)
        p = re.sub(r"(?<![\w.])(-?)\.(\d)", r"\g<1>0.\2", p)
        p = re.sub(r"!0\b", "true", p)
        p = re.sub(r"!1\b", "false", p)
        p = re.sub(r"\bvoid 0\b", "null", p)
        parts[k] = p
    import json
    return json.loads("".join(parts))


def load(model_dir):
    model = js_object(open(f"{model_dir}/model.min.js").read())
    manifest = model["weightsManifest"]
    blob = b"".join(
        base64.b64decode(js_object(open(f"{model_dir}/{path}.min.js").read()))
        for group in manifest
        for path in group["paths"]
    )
    weights, offset = {}, 0
    for group in manifest:
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                raw = np.frombuffer(blob, dtype=np.uint8, count=count, offset=offset)
                value = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                offset += count
            else:
                value = np.frombuffer(blob, dtype=np.float32, count=count, offset=offset)
                offset += count * 4
            weights[w["name"]] = value.reshape(w["shape"]).astype(np.float32)
    if offset != len(blob):
        sys.exit(f"weights use {offset} bytes of {len(blob)}")
    return model["modelTopology"]["model_config"]["config"], weights


def convert(config, weights):
    nodes, initializers = [], []

    def const(name, array):
        initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    names = {}  # Keras layer name -> ONNX tensor name
    input_layer = config["input_layers"][0][0]
    nodes.append(helper.make_node("Transpose", ["input"], ["input_nchw"], perm=[0, 3, 1, 2]))
    names[input_layer] = "input_nchw"
    for layer in config["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        if kind == "InputLayer":
            continue
        inputs = [names[n[0]] for n in layer["inbound_nodes"][0]]
        out = name
        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = cfg["padding"]
            pads = const(f"{name}/pads", np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64))
            nodes.append(helper.make_node("Pad", [inputs[0], pads], [out], mode="constant"))
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            assert cfg["dilation_rate"] == [1, 1] and cfg["activation"] == "linear" and not cfg["use_bias"]
            if kind == "Conv2D":
                w = weights[f"{name}/kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
                group = 1
            else:
                k = weights[f"{name}/depthwise_kernel"]  # H, W, C, multiplier
                assert k.shape[3] == 1
                w = k.transpose(2, 3, 0, 1)  # C, 1, H, W
                group = k.shape[2]
            attrs = dict(kernel_shape=list(cfg["kernel_size"]), strides=list(cfg["strides"]), group=group)
            if cfg["padding"] == "same":
                attrs["auto_pad"] = "SAME_UPPER"  # TensorFlow's SAME: any odd pixel at the end
            nodes.append(helper.make_node("Conv", [inputs[0], const(f"{name}/W", w)], [out], **attrs))
        elif kind == "BatchNormalization":
            p = [const(f"{name}/{k}", weights[f"{name}/{k}"]) for k in ("gamma", "beta", "moving_mean", "moving_variance")]
            nodes.append(helper.make_node("BatchNormalization", [inputs[0], *p], [out], epsilon=cfg["epsilon"]))
        elif kind == "ReLU":
            assert cfg.get("negative_slope", 0) == 0 and cfg.get("threshold", 0) == 0
            lo = const(f"{name}/min", np.array(0, dtype=np.float32))
            hi = const(f"{name}/max", np.array(cfg["max_value"], dtype=np.float32))
            nodes.append(helper.make_node("Clip", [inputs[0], lo, hi], [out]))
        elif kind == "Add":
            nodes.append(helper.make_node("Add", inputs, [out]))
        elif kind == "AveragePooling2D":
            assert cfg["padding"] == "valid"
            nodes.append(helper.make_node("AveragePool", inputs, [out], kernel_shape=cfg["pool_size"], strides=cfg["strides"]))
        elif kind == "Flatten":
            # The pooled map is 1x1, so NCHW and NHWC flatten to the same order.
            nodes.append(helper.make_node("Flatten", inputs, [out], axis=1))
        elif kind == "Dropout":
            out = inputs[0]
        elif kind == "Dense":
            mm = f"{name}/matmul"
            nodes.append(helper.make_node("MatMul", [inputs[0], const(f"{name}/kernel", weights[f"{name}/kernel"])], [mm]))
            activation = cfg["activation"]
            biased = f"{name}/biased" if activation != "linear" else out
            nodes.append(helper.make_node("Add", [mm, const(f"{name}/bias", weights[f"{name}/bias"])], [biased]))
            if activation == "relu":
                nodes.append(helper.make_node("Relu", [biased], [out]))
            elif activation == "softmax":
                nodes.append(helper.make_node("Softmax", [biased], [out], axis=-1))
            else:
                assert activation == "linear", activation
        else:
            sys.exit(f"unsupported layer {kind} ({name})")
        names[name] = out
    output = names[config["output_layers"][0][0]]
    nodes.append(helper.make_node("Identity", [output], ["probabilities"]))
    graph = helper.make_graph(
        nodes,
        "nsfwjs_mobilenet_v2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 224, 224, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 5])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ims nsfwjs_to_onnx")
    model.ir_version = 8
    helper.set_model_props(model, {"classes": "Drawing,Hentai,Neutral,Porn,Sexy", "source": "npm nsfwjs@4.4.0 mobilenet_v2"})
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    config, weights = load(sys.argv[1])
    model = convert(config, weights)
    with open(sys.argv[2], "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
