#!/usr/bin/python3
"""Every #include "..." in src/ against the stage order (issue 18, item 3).

Usage: stage_order_test.py SOURCE_DIR PROTO_STAGE STAGE...

STAGE... is the order of the stage folders of src/, lowest first, as CMakeLists.txt builds them
(REINIT_STAGES); PROTO_STAGE is the lowest stage that links reinit_proto, from which on
"plan.pb.h" may be included. Below the stages are the base units at the top of src/ (status,
parallel); above them the library's front (reinit, option_values). A file may include its own
stage and the ones below it, nothing above. The build enforces the same order for the files
that are compiled (each stage library sees only its own folder and the ones below); this check
also covers the headers no .cc includes, and the base's .cc files, which the compiler would let
find any header beside them in src/. Any other file at the top of src/, a folder that is not a
stage, or an include of a file that does not exist fails the check too.
Prints one line per violation and "N includes checked, M against the order".
"""

import os
import re
import sys

BASE = {"status", "parallel"}
FRONT = {"reinit", "option_values"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src = os.path.join(sys.argv[1], "src")
    proto_stage, stages = sys.argv[2], sys.argv[3:]
    rank = {"base": 0, "front": len(stages) + 1}
    rank.update({stage: i + 1 for i, stage in enumerate(stages)})

    def level(path):
        """The stage of a file, by its path relative to src/; None if it has none."""
        if path == "plan.pb.h":
            return proto_stage
        folder, _, name = path.partition("/")
        if not name:
            unit = os.path.splitext(path)[0]
            return "base" if unit in BASE else "front" if unit in FRONT else None
        return folder if folder in stages else None

    problems, checked = [], 0
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.relpath(os.path.join(root, name), src)
            own = level(path)
            if own is None:
                problems.append(f"src/{path}: not in a stage folder ({', '.join(stages)}) nor "
                                f"one of the top's units ({', '.join(sorted(BASE | FRONT))})")
                continue
            with open(os.path.join(root, name), encoding="utf-8") as f:
                text = f.read()
            for match in INCLUDE.finditer(text):
                included = match.group(1)
                line = text.count("\n", 0, match.start()) + 1
                checked += 1
                target = level(included)
                if target is None or (included != "plan.pb.h"
                                      and not os.path.isfile(os.path.join(src, included))):
                    problems.append(f"src/{path}:{line}: \"{included}\" is no file of src/ "
                                    f"(includes name it from src/, e.g. \"graph/fans.h\")")
                elif rank[target] > rank[own]:
                    problems.append(f"src/{path}:{line}: \"{included}\" is in {target}, above "
                                    f"{own} (order: base < {' < '.join(stages)} < front)")
    for problem in problems:
        print(problem)
    print(f"{checked} includes checked, {len(problems)} against the order")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
