"""The Python package as a user installs it: `pip wheel .` and `pip install .` into a fresh venv.

Usage: wheel_test.py SOURCE_DIR BUILD_TOOL

In a new virtual environment of Debian's python3 (no system site packages), with the pinned onnx
and numpy of .ci/requirements.txt:
  1. `pip wheel SOURCE --no-deps` makes a wheel holding the module (reinit/__init__.py,
     __main__.py, the extension) and the tool (reinit/bin/reinit);
  2. `pip install SOURCE` installs the package (the same build directory: no second compile);
  3. one version string: `reinit --version`, `python -m reinit --version`, reinit.__version__,
     the installed distribution's metadata and project(reinit VERSION ...) in CMakeLists.txt;
  4. the installed `reinit` command and `python -m reinit` write the same bytes as the build
     tree's tool (BUILD_TOOL) on a sample model, and exit 2 with a usage error as it does;
  5. tests/python_api_test.py runs against the installed package (no PYTHONPATH; the module is
     the one in the venv's site-packages), with the installed tool as its reference.
The packages come from PyPI (scikit-build-core and pybind11 for the build, pinned in
pyproject.toml); ONNX's C++ library from the cache cmake/onnx.cmake keeps. Exits 77 (skipped)
without Debian's python3 and its venv module.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import zipfile

SOURCE, BUILD_TOOL = sys.argv[1], sys.argv[2]
PYTHON = "/usr/bin/python3"
FAILURES = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def must(cmd, what, **kw):
    r = run(cmd, **kw)
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-4000:], sep="\n")
        print(f"FAIL  {what}: exit {r.returncode}")
        sys.exit(1)
    return r


def pinned(names):
    """The pinned requirement lines of .ci/requirements.txt for these packages."""
    lines = open(os.path.join(SOURCE, ".ci", "requirements.txt")).read().splitlines()
    return [l for l in lines if l.split("==")[0] in names]


def project_version():
    text = open(os.path.join(SOURCE, "CMakeLists.txt")).read()
    return re.search(r"project\(reinit VERSION ([0-9.]+)", text).group(1)


def main():
    if not os.path.exists(PYTHON) or run([PYTHON, "-c", "import venv, ensurepip"]).returncode:
        print("skipped: Debian's python3 with its venv module (python3-venv) is needed")
        return 77
    with tempfile.TemporaryDirectory(prefix="reinit_wheel_") as tmp:
        venv = os.path.join(tmp, "venv")
        must([PYTHON, "-m", "venv", venv], "python3 -m venv")
        py, pip = os.path.join(venv, "bin", "python"), [os.path.join(venv, "bin", "python"),
                                                        "-m", "pip", "--disable-pip-version-check"]
        must(pip + ["install", "-q"] + pinned({"onnx", "numpy", "protobuf", "ml_dtypes",
                                               "typing_extensions"}), "pip install onnx numpy")
        wheels = os.path.join(tmp, "wheels")
        must(pip + ["wheel", "-q", "--no-deps", "-w", wheels, SOURCE], "pip wheel .")
        built = glob.glob(os.path.join(wheels, "reinit-*.whl"))
        check(len(built) == 1, f"pip wheel . made one wheel: {[os.path.basename(w) for w in built]}")
        names = set(zipfile.ZipFile(built[0]).namelist()) if built else set()
        for want in ("reinit/__init__.py", "reinit/__main__.py", "reinit/bin/reinit"):
            check(want in names, f"the wheel holds {want}")
        check(any(re.fullmatch(r"reinit/_reinit\..*\.so", n) for n in names),
              "the wheel holds the extension reinit/_reinit.*.so")
        must(pip + ["install", "-q", SOURCE], "pip install .")

        tool = os.path.join(venv, "bin", "reinit")
        version = project_version()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = run([tool, "--version"], env=env).stdout.strip()
        check(out == f"reinit {version}", f"reinit --version: {out!r}")
        out = run([py, "-m", "reinit", "--version"], env=env, cwd=tmp).stdout.strip()
        check(out == f"reinit {version}", f"python -m reinit --version: {out!r}")
        probe = ("import importlib.metadata, reinit; print(reinit.__version__); "
                 "print(importlib.metadata.version('reinit')); print(reinit.__file__)")
        lines = run([py, "-c", probe], env=env, cwd=tmp).stdout.split()
        check(lines[:2] == [version, version], f"reinit.__version__ and the metadata: {lines[:2]}")
        check(len(lines) == 3 and lines[2].startswith(venv),
              f"import reinit finds the installed package: {lines[2:]}")

        model = os.path.join(SOURCE, "models", "resnet_cnn.onnx")
        outputs = {}
        for label, cmd in (("build tree", [BUILD_TOOL]), ("installed", [tool]),
                           ("python -m", [py, "-m", "reinit"])):
            path = os.path.join(tmp, label.replace(" ", "_") + ".onnx")
            r = run(cmd + [model, "--scheme", "auto", "--seed", "3", "-o", path, "-q"], env=env,
                    cwd=tmp)
            check(r.returncode == 0, f"{label}: reinit resnet_cnn.onnx exits 0 ({r.stderr.strip()})")
            outputs[label] = open(path, "rb").read() if os.path.exists(path) else b""
            bad = run(cmd + ["--no-such-flag"], env=env, cwd=tmp)
            check(bad.returncode == 2 and bad.stderr.startswith("reinit: "),
                  f"{label}: a usage error exits 2 ({bad.returncode}: {bad.stderr[:60]!r})")
        check(outputs["installed"] == outputs["build tree"] == outputs["python -m"] != b"",
              "the installed command, python -m reinit and the build tree's tool write the same bytes")

        api = run([py, os.path.join(SOURCE, "tests", "python_api_test.py"), tool, SOURCE, "ON"],
                  env=env, cwd=tmp)
        print(api.stdout[-3000:], api.stderr[-3000:], sep="\n")
        check(api.returncode == 0, "tests/python_api_test.py against the installed package")
    print(f"{len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
