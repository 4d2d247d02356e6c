"""Where a command's CPU goes, by process family, including what ``rusage`` misses.

Not a benchmark (no ratio): a measuring aid for the suite's speed work. ``/usr/bin/time`` and
``getrusage`` count only children a process waited for; chromium's renderers and GPU process are
zygote children nobody waits for, so their CPU is charged to nobody. This runs the command and
samples every descendant's ``/proc/<pid>/stat`` (utime + stime) every 0.1 s, keeping the last
value per pid (a process's final < 0.1 s may be missed)::

    env -u PYTHONDONTWRITEBYTECODE python3 bench/treecpu.py \\
        .venv/bin/python -m pytest -n 0 -q -p no:cacheprovider tests/e2e
"""

from __future__ import annotations

import collections
import os
import resource
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def snapshot() -> tuple[dict[int, list[int]], dict[int, float]]:
    """Children of every pid, and every pid's CPU-seconds so far."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    cpu: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        children[int(fields[1])].append(int(name))
        cpu[int(name)] = (int(fields[11]) + int(fields[12])) / HZ
    return children, cpu


def family(pid: int) -> str:
    """chromium-<type>, node (the Playwright driver), s3drop-server, pytest, or the program."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0")]
    except OSError:
        return "?"
    line = " ".join(argv)
    if "chromium" in line:
        kinds = ("renderer", "gpu-process", "utility", "zygote")
        return "chromium-" + next((k for k in kinds if f"--type={k}" in line), "browser")
    if os.path.basename(argv[0]) == "node":
        return "node"
    if "s3drop" in line and "pytest" not in line:
        return "s3drop-server"
    if "pytest" in line:
        return "pytest"
    return os.path.basename(argv[0])[:20] or "?"


def main(command: list[str]) -> int:
    started = time.monotonic()
    process = subprocess.Popen(command)
    seen: dict[int, tuple[str, float]] = {}
    while process.poll() is None:
        children, cpu = snapshot()
        stack = [process.pid]
        while stack:
            pid = stack.pop()
            if pid in cpu:
                seen[pid] = (seen[pid][0] if pid in seen else family(pid), cpu[pid])
            stack.extend(children.get(pid, []))
        time.sleep(0.1)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for name, seconds in seen.values():
        total[name] += seconds
        count[name] += 1
    print(
        f"\nwall {time.monotonic() - started:.1f} s; rusage(children) "
        f"{usage.ru_utime + usage.ru_stime:.1f} CPU-s; process tree {sum(total.values()):.1f} CPU-s",
        file=sys.stderr,
    )
    for name, seconds in total.most_common():
        if seconds >= 0.05:
            print(f"  {name:24s} {seconds:7.1f} CPU-s ({count[name]} processes)", file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
