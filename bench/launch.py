"""Run one command; write its wall time and peak RSS to a report file.

Usage:  /usr/bin/python3 -S -I bench/launch.py REPORT TIMEOUT_S CMD [ARG...]

Writes one line to REPORT: wall seconds, exit code (negative: killed by that signal), peak RSS
in KiB (ru_maxrss from os.wait4), user and system CPU seconds, and 1 if the timeout killed it.
The command inherits this process's stdin, stdout and stderr.

Why a separate process: exec() records the old address space's high-water mark into the new
program's ru_maxrss, and with vfork/posix_spawn (what subprocess uses) the old address space is
the parent's. A child started straight from the benchmark runner would report at least the
runner's own peak RSS. This launcher, started without site-packages (-S -I) and importing
nothing else, forks a copy of itself of about 5 MiB: a child's peak RSS reads as
max(that floor, its real peak). run.py measures the floor with /bin/true and prints it.
"""

import os
import signal
import sys
import time


def main():
    report, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    # The PATH search happens here, not in the child: the child does nothing but exec, so that
    # its address space at exec is the same small copy whatever the command.
    path = cmd[0]
    if "/" not in path:
        found = [os.path.join(d, path) for d in os.get_exec_path()
                 if os.access(os.path.join(d, path), os.X_OK)]
        path = found[0] if found else path
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(path, cmd)
        except OSError as e:
            os.write(2, f"launch.py: cannot run {cmd[0]}: {e.strerror}\n".encode())
        os._exit(127)
    timed_out = []

    def on_alarm(signum, frame):
        timed_out.append(1)
        os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    signal.setitimer(signal.ITIMER_REAL, 0)
    with open(report, "w") as f:
        f.write(f"{wall!r} {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} "
                f"{usage.ru_utime!r} {usage.ru_stime!r} {len(timed_out)}\n")


if __name__ == "__main__":
    main()
