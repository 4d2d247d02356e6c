"""The client's POST to storage: httpx's multipart encoder vs the hand-built body it replaced.

``python -m bench client_body`` (``./scripts/bench client_body`` also writes its rows into
bench/README.md's table), or alone ``python -m bench.client_body [--rounds N] [--mib N]``: one local-backend server (the bench app, one
uvicorn worker pinned to its own CPU); per round, the same 10 MiB file posted with a freshly signed
form by :meth:`s3drop._client.Client.post_file` (httpx's encoder reading a
:class:`~s3drop._client.multipart.ProgressReader`, 64 KiB reads, progress reported) and by the body
s3drop built by hand before (``_hand_built_body`` below, a copy of the old ``form_body``: its own
boundary and part headers, 256 KiB reads, progress reported), through the same ``httpx.Client``.
Order alternates each round. Wall and client CPU time of each post (signing not timed), and in
separate posts the client's peak Python memory while posting (``tracemalloc``). Ratios are
subject / baseline.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from s3drop._client import Client
from s3drop._policy import UploadForm

from .common import MiB, Report, Row, Series, Target, paired_ratio, serve
from .upload import make_body

SETTINGS = {"S3DROP_RATE_PER_MINUTE": str(10**9), "S3DROP_BYTES_PER_HOUR": str(10**15)}


def _hand_built_body(
    form: UploadForm, path: Path, progress: Callable[[int, int], None]
) -> tuple[dict[str, str], Iterator[bytes]]:
    """The old ``s3drop._client.multipart.form_body``, as the baseline."""
    size = path.stat().st_size
    boundary = f"s3drop-{secrets.token_hex(16)}"

    def part(name: str, filename: str | None, content_type: str | None) -> bytes:
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if filename is not None:
            header += f'; filename="{filename}"'
        if content_type is not None:
            header += f"\r\nContent-Type: {content_type}"
        return (header + "\r\n\r\n").encode()

    head = b"".join(
        part(name, None, None) + value.encode() + b"\r\n" for name, value in form.fields.items()
    ) + part("file", path.name, form.content_type)
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        sent = 0
        progress(0, size)
        yield head
        with path.open("rb") as file:
            while chunk := file.read(256 * 1024):
                yield chunk
                sent += len(chunk)
                progress(sent, size)
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    return headers, body()


def bench(resources: Any, args: argparse.Namespace) -> Report:
    """``python -m bench client_body``: the hook :data:`bench.__main__.HOOKS` names."""
    return run(resources.workdir, rounds=args.rounds or 5)


def run(workdir: Path, *, rounds: int, mib: int = 10) -> Report:
    report = Report("client_body", f"Client POST of a {mib} MiB file: httpx encoder vs hand-built")
    size = mib * MiB
    path = make_body(workdir / f"client-body-{mib}MiB.png", size)
    with path.open("r+b") as file:
        file.write(b"\x89PNG\r\n\x1a\n")  # the client sniffs it as a PNG
    env = {**SETTINGS, "S3DROP_MAX_BYTES": str(size + MiB)}
    with serve(workdir, env=env, name="client-body") as server, Client(server.url) as client:
        objects = server.data_dir / "objects"
        content_type, length = client.check_file(path)

        def post(kind: str) -> None:
            form = client.sign(filename=path.name, content_type=content_type, size=length)
            calls = 0

            def progress(sent: int, total: int) -> None:
                nonlocal calls
                calls += 1

            if kind == "httpx":
                client.post_file(form, path, progress=progress)
            else:
                headers, body = _hand_built_body(form, path, progress)
                answer = client._http.post(form.url, headers=headers, content=body)
                answer.raise_for_status()
            stored = objects / form.key
            if stored.stat().st_size != size or calls < 2:
                raise RuntimeError(f"{kind}: not stored whole ({calls} progress calls)")
            stored.unlink()

        def wall(kind: str) -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            post(kind)
            return time.perf_counter() - started, time.process_time() - cpu

        def peak(kind: str) -> float:
            tracemalloc.start()
            try:
                post(kind)
                return tracemalloc.get_traced_memory()[1] / MiB
            finally:
                tracemalloc.stop()

        for kind in ("httpx", "hand"):  # warm up: page cache, connections, first-use imports
            post(kind)
        figures: dict[str, dict[str, list[float]]] = {
            "httpx": {"wall": [], "cpu": [], "peak": []},
            "hand": {"wall": [], "cpu": [], "peak": []},
        }
        for index in range(rounds):
            order = ("httpx", "hand") if index % 2 == 0 else ("hand", "httpx")
            for kind in order:
                seconds, cpu = wall(kind)
                figures[kind]["wall"].append(seconds)
                figures[kind]["cpu"].append(cpu)
            for kind in order:
                figures[kind]["peak"].append(peak(kind))
    new, old = figures["httpx"], figures["hand"]
    report.rows.append(
        Row(
            "post wall time",
            Series("httpx encoder", "s", new["wall"]),
            Series("hand-built body", "s", old["wall"]),
            paired_ratio(new["wall"], old["wall"], label="httpx / hand-built"),
            "httpx encoder's time / the hand-built body's",
            Target("ratio", "<=", 1.1, "<= 1.1x: no slower than the body it replaced"),
        )
    )
    report.rows.append(
        Row(
            "client CPU time per post (steadier than wall on a shared machine)",
            Series("httpx encoder", "s", new["cpu"]),
            Series("hand-built body", "s", old["cpu"]),
            paired_ratio(new["cpu"], old["cpu"], label="httpx / hand-built"),
            "httpx encoder's CPU time / the hand-built body's (no target, shown: four times the reads"
            " and progress calls, 64 KiB each instead of 256 KiB)",
        )
    )
    report.rows.append(
        Row(
            "client peak Python memory while posting",
            Series("httpx encoder", "MiB", new["peak"]),
            Series("hand-built body", "MiB", old["peak"]),
            paired_ratio(new["peak"], old["peak"], label="httpx / hand-built"),
            "httpx encoder's peak / the hand-built body's",
            Target("ratio", "<=", 1.0, "<= 1.0x: streams from disk, no more than before"),
        )
    )
    report.details["file_bytes"] = size
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=10)
    args = parser.parse_args(argv)
    workdir = Path(f"/tmp/s3drop-bench-client-body-{secrets.token_hex(4)}")
    workdir.mkdir()
    report = run(workdir, rounds=args.rounds, mib=args.mib)
    print(json.dumps(report.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
