"""`python -m reinit ...` and the `reinit` command of the installed package: the tool itself.

The wheel carries the tool's binary in reinit/bin/; this runs it in place of the Python process
(same arguments, exit code, output and signals), so both are exactly `reinit` as built.
"""

import os
import sys


def binary():
    """The path of the tool's binary inside the installed package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "reinit")


def main():
    path = binary()
    if not os.access(path, os.X_OK):
        sys.stderr.write("reinit: error: the tool's binary is missing from the package (" + path +
                         "): this module was not installed from the wheel (pip install .)\n")
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, ["reinit"] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
