"""``python -m bench.logcost``: what a sign's two log lines cost the thread that logs them.

A sign logs its audit line (``s3drop.audit``) and uvicorn's access line. Under ``s3drop serve``
both go through :class:`s3drop._logs.BackgroundHandler` (queued; formatted and written by a thread
of their own); the baseline, measured in the same run, is the same ``log_config`` with plain
``StreamHandler`` s (formatted and written by the caller: the event loop). Written to /dev/null,
so the figures are CPU, not a slow reader. Prints JSON: CPU microseconds per sign's two lines, in
the logging thread and in the whole process (the writer thread's work included), text and JSON
formats, the median of five rounds, and the ratio baseline / background for the logging thread.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import statistics
import sys
import time

from s3drop import _audit as audit
from s3drop._logs import LogFormat, log_config, stop_background

LINES = 20_000
ROUNDS = 5


def _round(log_format: LogFormat, *, background: bool) -> tuple[float, float]:
    config = log_config(log_format)
    if not background:
        for handler in config["handlers"].values():
            del handler["()"]
            handler["class"] = "logging.StreamHandler"
    logging.config.dictConfig(config)
    access = logging.getLogger("uvicorn.access")

    def sign() -> None:
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "POST", "/api/uploads", "1.1", 201
        )
        audit.record("sign", who="alice", key="incoming/abc.png", size=1000)

    for _ in range(500):
        sign()
    stop_background()
    logging.config.dictConfig(config)
    thread, process = time.thread_time(), time.process_time()
    for _ in range(LINES):
        sign()
    thread = time.thread_time() - thread
    stop_background()  # the writer thread's queue written: its CPU is in the process figure
    process = time.process_time() - process
    return thread / LINES * 1e6, process / LINES * 1e6


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull  # ext://sys.stderr
        try:
            for log_format in ("text", "json"):
                for background in (False, True):
                    rounds = [_round(log_format, background=background) for _ in range(ROUNDS)]
                    name = f"{log_format}, {'background' if background else 'StreamHandler'}"
                    results[name] = {
                        "logging_thread_us": round(statistics.median(r[0] for r in rounds), 1),
                        "process_us": round(statistics.median(r[1] for r in rounds), 1),
                    }
        finally:
            sys.stderr = sys.__stderr__
    ratios = {
        f"{fmt}: StreamHandler / background, logging thread": round(
            results[f"{fmt}, StreamHandler"]["logging_thread_us"]
            / results[f"{fmt}, background"]["logging_thread_us"],
            2,
        )
        for fmt in ("text", "json")
    }
    json.dump({"cpu_per_sign_two_lines": results, "ratios": ratios}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
