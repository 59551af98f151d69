#!/usr/bin/python3
"""The Python module `reinit` (python/) against the tool it shares its library with.

Usage: python_api_test.py REINIT SOURCE_DIR MODULE_BUILT   (PYTHONPATH: build/python)

Every expectation is what the `reinit` binary prints or writes for the same input: plan() is
`inspect --json`, reinit() writes the CLI's bytes (path, bytes and ModelProto, on every sample
model, under two schemes and seeds), plan= is --plan, layers= is --layer, propagate() is
`inspect --propagate`, errors carry the CLI's message. The GIL test checks that Python code runs
in the middle of a reinit() call. Exits 77 (skipped) when the module was not built
(MODULE_BUILT=OFF: REINIT_BUILD_PYTHON off, or pybind11-dev missing).
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REINIT, SOURCE, BUILT = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]  # the rest is unittest's
if BUILT != "ON":
    print("SKIP: the Python module was not built (REINIT_BUILD_PYTHON is off: pybind11-dev or "
          "python3-dev missing, or a preset turned it off)")
    sys.exit(77)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, numpy_helper, TensorProto  # noqa: E402

import reinit  # noqa: E402  (a failing import is a failure: the module was built)

MODELS = sorted(glob.glob(os.path.join(SOURCE, "models", "*.onnx")))
MLP = os.path.join(SOURCE, "models", "mlp_tanh.onnx")
RESNET = os.path.join(SOURCE, "models", "resnet_cnn.onnx")


def cli(*args, ok=True):
    p = subprocess.run([REINIT, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError("reinit " + " ".join(args) + " failed:\n" + p.stderr)
    return p


def cli_error(*args, code=1):
    """The CLI's message for a failing run: its stderr after 'reinit: error: '."""
    p = cli(*args, ok=False)
    assert p.returncode == code, (args, p.returncode, p.stderr)
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("reinit: error: "), p.stderr
    return line[len("reinit: error: "):]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def initializers(data):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}


class Base(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def cli_output(self, model, *args):
        out = os.path.join(self.tmp, "cli.onnx")
        cli(model, "-q", "-o", out, *args)
        return read(out)


class Schemes(Base):
    def test_registry_is_the_tools(self):
        listed = reinit.schemes()
        text = cli("schemes").stdout
        for s in listed:
            self.assertTrue(any(line.split(None, 1) == [s["name"], s["formula"]]
                                for line in text.splitlines()), s)
            self.assertIn(s["kind"], ("zero", "constant", "naive", "variance_scaling",
                                      "orthogonal", "policy"))
        # The unknown-scheme message lists exactly the registry, in its order.
        with self.assertRaises(ValueError) as e:
            reinit.plan(MLP, scheme="no-such-scheme")
        self.assertEqual(str(e.exception).split("valid schemes: ")[1].split(", "),
                         [s["name"] for s in listed])
        self.assertEqual(str(e.exception),
                         cli_error("inspect", MLP, "--scheme", "no-such-scheme", code=2))


class Plan(Base):
    def test_plan_is_inspect_json(self):
        flags = ["--scheme", "he-normal", "--seed", "4", "--fan-convention", "torch", "--mode",
                 "fan_out", "--bias", "keep", "--layer", "fc*=xavier-uniform"]
        kwargs = dict(scheme="he-normal", seed=4, fan_convention="torch", mode="fan_out",
                      bias="keep", layers={"fc*": "xavier-uniform"})
        for model in MODELS:
            with self.subTest(model=model):
                expected = json.loads(cli("inspect", model, "--json").stdout)
                self.assertEqual(reinit.plan(model), expected)
                self.assertEqual(reinit.plan(model, **kwargs),
                                 json.loads(cli("inspect", model, "--json", *flags).stdout))
                # In memory the plan is the same but for the name standing for the path.
                from_bytes = reinit.plan(read(model))
                self.assertEqual(from_bytes.pop("model"), "<bytes>")
                from_proto = reinit.plan(onnx.load(model))
                self.assertEqual(from_proto.pop("model"), "<ModelProto>")
                expected.pop("model")
                self.assertEqual(from_bytes, expected)
                self.assertEqual(from_proto, expected)

    def test_pathlike(self):
        import pathlib
        self.assertEqual(reinit.plan(pathlib.Path(MLP)), reinit.plan(MLP))


class Reinit(Base):
    CASES = [("auto", 5), ("he-uniform", 11)]

    def test_same_bytes_as_cli(self):
        for model in MODELS:
            for scheme, seed in self.CASES:
                with self.subTest(model=os.path.basename(model), scheme=scheme):
                    expected = self.cli_output(model, "--scheme", scheme, "--seed", str(seed))
                    out = os.path.join(self.tmp, "py.onnx")
                    self.assertEqual(reinit.reinit(model, scheme, seed, output=out), out)
                    self.assertEqual(read(out), expected)
                    self.assertEqual(reinit.reinit(read(model), scheme, seed), expected)
                    proto = reinit.reinit(onnx.load(model), scheme=scheme, seed=seed)
                    self.assertIsInstance(proto, onnx.ModelProto)
                    self.assertEqual(proto.SerializeToString(), expected)
                    self.assertNotEqual(expected, read(model))

    def test_default_output_path(self):
        model = os.path.join(self.tmp, "m.onnx")
        with open(model, "wb") as f:
            f.write(read(MLP))
        written = reinit.reinit(model, seed=2)
        self.assertEqual(written, os.path.join(self.tmp, "m.reinit.onnx"))
        self.assertEqual(read(written), self.cli_output(MLP, "--seed", "2"))
        out, plan = reinit.reinit(model, seed=2, return_plan=True, output=model + ".2.onnx")
        self.assertEqual(plan, json.loads(cli("inspect", model, "--json", "--seed", "2").stdout))

    def test_layers_override(self):
        expected = self.cli_output(RESNET, "--layer", "layer1.*=zero", "--layer", "fc=normal")
        self.assertNotEqual(expected, self.cli_output(RESNET))
        data = read(RESNET)
        self.assertEqual(reinit.reinit(data, layers={"layer1.*": "zero", "fc": "normal"}),
                         expected)
        self.assertEqual(reinit.reinit(data, layers=["layer1.*=zero", "fc=normal"]), expected)
        zeroed = initializers(expected)
        self.assertFalse(zeroed["layer1.conv1.weight"].any())

    def test_other_options_as_flags(self):
        flags = ["--scheme", "normal", "--std", "0.5", "--norms", "keep", "--residual", "zero",
                 "--forget-bias", "1", "--zero-init-residual", "--threads", "1"]
        self.assertEqual(reinit.reinit(read(RESNET), "normal", std=0.5, norms="keep",
                                       residual="zero", forget_bias=1.0, zero_init_residual=True,
                                       threads=1),
                         self.cli_output(RESNET, *flags))

    def test_lsuv_and_its_data(self):
        expected = self.cli_output(MLP, "--scheme", "lsuv", "--seed", "2", "--batch", "16",
                                   "--lsuv-tolerance", "0.05")
        self.assertEqual(reinit.reinit(read(MLP), "lsuv", 2, batch=16, lsuv_tolerance=0.05),
                         expected)
        x = os.path.join(self.tmp, "x.npy")
        np.save(x, np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32))
        expected = self.cli_output(MLP, "--scheme", "lsuv", "--data", x, "--lsuv-iterations", "3")
        for data in (x, {"x": x}, ["x=" + x]):
            with self.subTest(data=data):
                self.assertEqual(reinit.reinit(read(MLP), "lsuv", data=data, lsuv_iterations=3),
                                 expected)

    def test_edited_plan(self):
        plan = reinit.plan(RESNET)
        target = next(l for l in plan["layers"] if l["op"] == "Conv" and
                      l["weight"]["scheme"] != "zero")
        target["weight"]["scheme"] = "zero"
        name = target["weight"]["name"]
        from_dict = reinit.reinit(read(RESNET), plan=plan)
        self.assertEqual(reinit.reinit(read(RESNET), plan=json.dumps(plan)), from_dict)
        # The tool's --plan with the same edit writes the same bytes.
        plan_file = os.path.join(self.tmp, "plan.json")
        with open(plan_file, "w") as f:
            json.dump(plan, f)
        self.assertEqual(from_dict, self.cli_output(RESNET, "--plan", plan_file))
        out = os.path.join(self.tmp, "planned.onnx")
        reinit.reinit(RESNET, plan=plan, output=out)
        self.assertEqual(read(out), from_dict)
        # Exactly that tensor changed from the unedited run.
        edited, plain = initializers(from_dict), initializers(self.cli_output(RESNET))
        self.assertFalse(edited[name].any())
        self.assertTrue(plain[name].any())
        for k in plain:
            if k != name:
                np.testing.assert_array_equal(edited[k], plain[k], err_msg=k)

    def test_plan_excludes_plan_options(self):
        plan = reinit.plan(MLP)
        for kwargs in ({"scheme": "he-normal"}, {"seed": 3}, {"layers": {"fc1": "zero"}},
                       {"bias": "keep"}):
            with self.subTest(kwargs=kwargs), self.assertRaises(ValueError) as e:
                reinit.reinit(read(MLP), plan=plan, **kwargs)
            self.assertIn("plan= cannot be combined with", str(e.exception))

    def test_warnings(self):
        # A glob that matches nothing: the tool's warning, as a ReinitWarning.
        expected = cli(MLP, "--layer", "nothing*=zero", "-o", os.path.join(self.tmp, "w.onnx"),
                       "-q").stderr.strip()
        self.assertTrue(expected.startswith("reinit: warning: "), expected)
        with self.assertWarns(reinit.ReinitWarning) as w:
            reinit.reinit(MLP, layers={"nothing*": "zero"}, output=os.path.join(self.tmp,
                                                                                "x.onnx"))
        self.assertEqual(str(w.warning), expected[len("reinit: warning: "):])


class Errors(Base):
    def test_unknown_option_lists_valid(self):
        with self.assertRaises(ValueError) as e:
            reinit.reinit(read(MLP), no_such_option=1)
        message = str(e.exception)
        self.assertIn("'no_such_option'", message)
        for valid in ("fan_convention", "layers", "bias", "norms", "threads", "lsuv_tolerance"):
            self.assertIn(valid, message)
        # A file-only option is not offered for bytes; plan() takes no drawing options.
        with self.assertRaises(ValueError):
            reinit.reinit(read(MLP), external_data="single")
        with self.assertRaises(ValueError) as e:
            reinit.plan(MLP, threads=2)
        self.assertNotIn("threads", str(e.exception).split("valid: ")[1])

    def test_bad_model_type(self):
        with self.assertRaises(TypeError):
            reinit.plan(12)

    def test_bad_values(self):
        cases = [({"fan_convention": "tf"}, "onnx, torch"), ({"mode": "fan_avg"}, "fan_in"),
                 ({"bias": "drop"}, "zero, keep"), ({"norms": "drop"}, "reset, keep"),
                 ({"residual": "bogus"}, "fixup"), ({"std": -1}, "positive"),
                 ({"threads": -1}, "range"), ({"layers": ["noequals"]}, "GLOB=SCHEME"),
                 ({"layers": {"fc*": "bogus"}}, "valid schemes: auto"),
                 ({"seed": -1}, "seed"), ({"bias": 1}, "str"), ({"std": "x"}, "number"),
                 ({"max_memory": 0}, "range")]
        for kwargs, hint in cases:
            with self.subTest(kwargs=kwargs), self.assertRaises(ValueError) as e:
                reinit.plan(MLP, **kwargs)
            self.assertIn(hint, str(e.exception))
        with self.assertRaises(ValueError) as e:
            reinit.propagate(MLP, inputs=["x=1,0"])
        self.assertIn("positive dims", str(e.exception))
        self.assertEqual(str(e.exception),
                         cli_error("inspect", MLP, "--propagate", "--input", "x=1,0", code=2))

    def test_model_errors_carry_the_cli_message(self):
        self.assertTrue(issubclass(reinit.Error, Exception))
        self.assertFalse(issubclass(reinit.Error, ValueError))
        missing = os.path.join(self.tmp, "missing.onnx")
        for call in (reinit.plan, reinit.reinit, reinit.propagate):
            with self.subTest(call=call.__name__), self.assertRaises(reinit.Error) as e:
                call(missing)
            self.assertEqual(str(e.exception), cli_error("inspect", missing))
        corrupt = os.path.join(self.tmp, "corrupt.onnx")
        for data in (b"\x08\x07\x12garbage", read(MLP)[:100], b""):
            with open(corrupt, "wb") as f:
                f.write(data)
            expected = cli_error(corrupt, "-o", os.path.join(self.tmp, "o.onnx"))
            with self.subTest(data=data[:10]), self.assertRaises(reinit.Error) as e:
                reinit.reinit(corrupt, output=os.path.join(self.tmp, "o.onnx"))
            self.assertEqual(str(e.exception), expected)
            with self.assertRaises(reinit.Error) as e:
                reinit.reinit(data)
            self.assertEqual(str(e.exception), expected.replace(corrupt, "<bytes>"))

    def test_bad_plan_carries_the_cli_message(self):
        plan = reinit.plan(MLP)
        plan["layers"][0]["name"] = "no_such_layer"
        plan_file = os.path.join(self.tmp, "bad.json")
        with open(plan_file, "w") as f:
            json.dump(plan, f)
        expected = cli_error(MLP, "--plan", plan_file, "-o", os.path.join(self.tmp, "o.onnx"))
        with self.assertRaises(reinit.Error) as e:
            reinit.reinit(read(MLP), plan=plan)
        self.assertEqual(str(e.exception), expected.replace(plan_file, "<plan>"))
        self.assertIn("no_such_layer", str(e.exception))


def cli_propagate(model, *args):
    """The per-layer rows of `inspect --propagate` and the rows of its residual joins."""
    lines = cli("inspect", model, "--propagate", *args).stdout.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("layer "))
    layers = []
    for line in lines[head + 1:]:
        if not line.strip():
            break
        layers.append(line.split())
    joins = []
    if "residual streams, std after each join:" in lines:
        start = lines.index("residual streams, std after each join:") + 2
        for line in lines[start:]:
            if not line.strip() or ":" in line:
                break
            joins.append(line.split())
    return layers, joins


class Propagate(Base):
    KEYS = ["layer", "op", "activation", "mean_before", "std_before", "mean_after", "std_after"]

    def assert_matches(self, table, rows):
        self.assertEqual(list(table), self.KEYS)
        self.assertEqual({len(v) for v in table.values()}, {len(rows)})
        self.assertGreater(len(rows), 0)
        for k, key in enumerate(self.KEYS):
            column = [r[k] for r in rows]
            if k < 3:
                self.assertEqual(list(table[key]), column, key)
            else:  # printed to 4 significant digits
                np.testing.assert_allclose(table[key], np.array(column, float), rtol=1e-3,
                                           atol=0, err_msg=key)

    def test_as_is_matches_inspect(self):
        for model in (MLP, RESNET):
            layers, _ = cli_propagate(model, "--seed", "3", "--batch", "4")
            self.assert_matches(reinit.propagate(model, seed=3, batch=4), layers)
            self.assert_matches(reinit.propagate(read(model), seed=3, batch=4), layers)

    def test_joins(self):
        table, joins = reinit.propagate(RESNET, joins=True)
        _, rows = cli_propagate(RESNET)
        self.assertEqual({len(v) for v in joins.values()}, {len(rows)})
        self.assertEqual(list(joins["stream"]), [r[0] for r in rows])
        self.assertEqual(list(joins["branch"]), [int(r[1]) for r in rows])
        self.assertEqual(list(joins["join"]), [r[2] for r in rows])
        np.testing.assert_allclose(joins["std"], [float(r[3]) for r in rows], rtol=1e-3)

    def test_after_a_scheme(self):
        # propagate(scheme=S) is inspect --propagate of the CLI's output under S.
        out = os.path.join(self.tmp, "he.onnx")
        cli(MLP, "-q", "--scheme", "he-normal", "--seed", "9", "-o", out)
        layers, _ = cli_propagate(out, "--seed", "9")
        self.assert_matches(reinit.propagate(MLP, scheme="he-normal", seed=9), layers)
        self.assert_matches(reinit.propagate(read(MLP), scheme="he-normal", seed=9), layers)
        # ... and not the model as it is.
        as_is = reinit.propagate(MLP, seed=9)
        self.assertFalse(np.allclose(as_is["std_after"], [float(r[6]) for r in layers]))

    def test_inputs(self):
        table = reinit.propagate(RESNET, inputs={"x": [2, 3, 32, 32]})
        layers, _ = cli_propagate(RESNET, "--input", "x=2,3,32,32")
        self.assert_matches(table, layers)


def big_gemm(path, n=2048):
    """One n x n Gemm: 16 MiB of weights, drawn whole under orthogonal (a QR)."""
    w = numpy_helper.from_array(np.zeros((n, n), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def read_safetensors(path):
    """{name: array} from a safetensors file, read here from the format's spec (F32/F64/F16/I64)."""
    data = read(path)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8"}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        out[name] = np.frombuffer(raw, dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
    return out


class Export(Base):
    """export() is `reinit export`: the same tensors, names and sidecar; files when output=."""

    def setUp(self):
        super().setUp()
        self.r18 = os.path.join(self.tmp, "resnet18.train.onnx")
        import gzip
        with gzip.open(os.path.join(SOURCE, "models", "corpus", "resnet18.train.onnx.gz")) as f:
            data = f.read()
        with open(self.r18, "wb") as f:
            f.write(data)

    def cli_export(self, model, *args):
        out = os.path.join(self.tmp, "cli.safetensors")
        cli("export", model, "-o", out, *args)
        with open(out + ".json") as f:
            return read_safetensors(out), json.load(f)

    def expect_same(self, got, want):
        self.assertEqual(sorted(got), sorted(want))
        for name in want:
            self.assertEqual(got[name].dtype, want[name].dtype, name)
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)

    def test_same_tensors_and_sidecar_as_cli(self):
        for model, names, scheme, seed in [(self.r18, "torch", "auto", 3), (RESNET, "onnx", "he-normal", 0),
                                           (MLP, "torch", "xavier-uniform", 11)]:
            want, want_side = self.cli_export(model, "--names", names, "--scheme", scheme,
                                              "--seed", str(seed))
            got, side = reinit.export(model, names=names, scheme=scheme, seed=seed)
            self.expect_same(got, want)
            side.pop("model"), want_side.pop("model")
            self.assertEqual(side, want_side)
            got_bytes, _ = reinit.export(read(model), names=names, scheme=scheme, seed=seed)
            self.expect_same(got_bytes, want)

    def test_values_are_reinit_s(self):
        # names="onnx": every exported tensor is the initializer reinit() writes.
        tensors, side = reinit.export(RESNET, scheme="auto", seed=5)
        model = initializers(reinit.reinit(read(RESNET), scheme="auto", seed=5))
        self.assertTrue(tensors)
        for name, value in tensors.items():
            np.testing.assert_array_equal(value, model[name], err_msg=name)
        self.assertEqual({t["name"] for t in side["tensors"]}, set(tensors))

    def test_as_is_and_plan(self):
        tensors, _ = reinit.export(RESNET, as_is=True)
        for name, value in tensors.items():
            np.testing.assert_array_equal(value, initializers(read(RESNET))[name], err_msg=name)
        p = reinit.plan(RESNET, seed=2)
        a, _ = reinit.export(RESNET, plan=p)
        b, _ = reinit.export(RESNET, seed=2)
        self.expect_same(a, b)

    def test_output_writes_the_cli_s_files(self):
        out = os.path.join(self.tmp, "py.npz")
        tensors, _ = reinit.export(self.r18, names="torch", output=out, seed=1)
        cli_out = os.path.join(self.tmp, "cli.npz")
        cli("export", self.r18, "--names", "torch", "--seed", "1", "-o", cli_out)
        self.assertEqual(read(out), read(cli_out))
        with np.load(out) as z:
            self.expect_same({k: z[k] for k in z.files}, tensors)
        self.assertTrue(os.path.exists(out + ".json"))
        # from bytes too
        out2 = os.path.join(self.tmp, "bytes.npz")
        reinit.export(read(self.r18), names="torch", output=out2, seed=1)
        self.assertEqual(read(out2), read(cli_out))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "onnx, torch, keras|torch"):
            reinit.export(MLP, names="jax")
        with self.assertRaisesRegex(ValueError, "unknown option 'fsync' for reinit.export"):
            reinit.export(MLP, fsync=True)
        with self.assertRaises(ValueError):
            reinit.export(MLP, output=os.path.join(self.tmp, "w.bin"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "w.bin")))
        want = cli_error("export", MLP, "--scheme", "lsuv", "-o", os.path.join(self.tmp, "x.npz"),
                         code=2)
        with self.assertRaises(ValueError) as e:
            reinit.export(MLP, scheme="lsuv")
        self.assertEqual(str(e.exception), want)
        missing = os.path.join(self.tmp, "missing.onnx")
        want = cli_error("export", missing, "-o", os.path.join(self.tmp, "x.npz"))
        with self.assertRaises(reinit.Error) as e:
            reinit.export(missing)
        self.assertEqual(str(e.exception), want)


class Gil(Base):
    def test_python_runs_during_a_call(self):
        model = os.path.join(self.tmp, "big.onnx")
        big_gemm(model)
        ticks = []  # the counter thread's clock, one entry per pure-Python step
        stop = threading.Event()

        def count():
            while not stop.is_set():
                ticks.append(time.monotonic())

        calls = {}

        def work(k, threads):
            out = os.path.join(self.tmp, f"out{k}.onnx")
            start = time.monotonic()
            reinit.reinit(model, "orthogonal", 1, output=out, threads=threads, skip_check=True)
            calls[k] = (start, time.monotonic(), read(out))

        counter = threading.Thread(target=count)
        counter.start()
        # Different thread counts at once: the library's pool is replaced under a running draw.
        workers = [threading.Thread(target=work, args=(k, k + 1)) for k in range(2)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        counter.join()
        self.assertEqual(len(calls), 2)
        for start, end, _ in calls.values():
            self.assertGreater(end - start, 0.02, "the call was too short to judge")
            # With the GIL held through the call, no Python could run in its middle half.
            lo, hi = start + (end - start) / 4, end - (end - start) / 4
            inside = sum(lo <= t <= hi for t in ticks)
            self.assertGreater(inside, 100, f"{inside} Python steps ran in the middle of a "
                               f"{end - start:.3f} s call")
        # Same seed, any thread count, concurrent or not: the same bytes as the CLI's.
        self.assertEqual(calls[0][2], calls[1][2])
        self.assertEqual(calls[0][2], self.cli_output(model, "--scheme", "orthogonal", "--seed",
                                                      "1", "--skip-check"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
