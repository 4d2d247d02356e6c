"""A decode worker of :class:`s3drop._sandbox.DecodePool`: the process, and the pool's handle on it.

:class:`_Worker` starts one (``python -c`` :data:`_BOOT`, over a socket pair) and kills or retires
it. The process (:func:`_main`) runs at a lower CPU priority (``nice`` :data:`NICE`) under an
address-space limit (``RLIMIT_AS``) and, per task, a ``RLIMIT_CPU`` backstop; it reads
``(content_type, limits)`` and the bytes, runs :func:`s3drop._images.process` and answers
``(kind, value, peak, same)`` (then, for an image, its stored bytes and thumbnail unpickled). It
imports s3drop's image modules only: no pydantic, no web app.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import resource
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._convert import register_heif
from ._errors import CorruptImage, ImageRejected
from ._images import ProcessedImage, header_pixels, process

if TYPE_CHECKING:
    from ._sandbox import SandboxLimits

#: How much lower a worker's CPU priority is than the server's (``nice``).
NICE = 10


# --- the parent's handle on a worker ----------------------------------------------------------


class _Worker:
    """One worker process (``python -c``: no multiprocessing, so nothing of the embedding
    program's ``__main__`` runs again) and the parent's end of its socket."""

    def __init__(self, limits: SandboxLimits) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SOURCE, *sys.path[1:]])}
        command = [sys.executable, "-c", _BOOT, str(child.fileno())]
        command += [str(limits.memory), repr(limits.cpu_seconds)]
        self.process = subprocess.Popen(
            command, pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.tasks = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)

    def retire(self) -> None:
        """Ask the worker to end: it reads EOF and exits."""
        with contextlib.suppress(OSError):
            self.conn.close()
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.kill()


_SOURCE = str(Path(__file__).resolve().parent.parent)
# The worker imports s3drop's image modules without the package's __init__ (pydantic, the web
# app, boto3): it starts in a third of the time.
_BOOT = (
    "import sys, types; package = types.ModuleType('s3drop'); "
    f"package.__path__ = [{str(Path(__file__).resolve().parent)!r}]; "
    "sys.modules['s3drop'] = package; "
    "from s3drop._sandbox_worker import _main; _main(sys.argv[1:])"
)


# --- in the worker process --------------------------------------------------------------------


def _main(argv: list[str]) -> None:
    """Entry point of a worker process: ``fd memory cpu_seconds``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is for the server
    with contextlib.suppress(OSError):
        os.nice(NICE)  # the server (and a storage on the same machine) come first
    fd, memory, cpu_seconds = int(argv[0]), int(argv[1]), float(argv[2])
    _serve(Connection(fd), memory, cpu_seconds)


def _serve(conn: Connection, memory: int, cpu_seconds: float) -> None:
    """A worker's life: limits first, then one task per message until the pipe closes."""
    register_heif()  # pillow-heif's opener, so the worker decodes HEIC and HEIF
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    with contextlib.suppress(OSError, AttributeError):  # fewer malloc arenas: less address space
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
    conn.send("ready")  # imports done: from here on, CPU time is the tasks'
    while True:
        try:
            content_type, limits = conn.recv()
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        used = sum(os.times()[:2])
        backstop = math.ceil(used + cpu_seconds) + 2
        # The soft limit only (SIGXCPU ends the worker): a hard limit, once lowered, can never be
        # raised again for the next task without CAP_SYS_RESOURCE.
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = backstop if hard == resource.RLIM_INFINITY else min(backstop, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        try:
            reply: tuple[str, Any] = ("ok", process(data, content_type, limits))
        except MemoryError:
            reply = ("memory", None)
        except CorruptImage as exc:
            # A decoder that cannot allocate often says "corrupt" rather than raising
            # MemoryError: a failure at the address-space limit is the limit's doing.
            short = _out_of_memory(memory, data, content_type)
            reply = ("memory", None) if short else ("rejected", exc)
        except ImageRejected as exc:
            reply = ("rejected", exc)
        except Exception as exc:  # re-raised in the caller, as if it had run there
            reply = ("error", exc)
        # This process's own peak: ru_maxrss would include the peak of the process it was
        # forked from (a big host process then retired every worker after every task).
        peak = (
            _vm_status().get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
        kind, value = reply
        if isinstance(value, ProcessedImage):  # the bytes go unpickled: no copy of them
            # Bytes the caller sent (nothing to strip) do not go back: it still holds them.
            same = value.data is data or value.data == data
            del data
            conn.send((kind, replace(value, data=b"", thumbnail=b""), peak, same))
            conn.send_bytes(b"" if same else value.data)
            conn.send_bytes(value.thumbnail)
            del value, reply
            continue
        del data
        try:
            conn.send((kind, value, peak, False))
        except Exception as exc:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), peak, False))
        if reply[0] == "memory":
            return


def _out_of_memory(memory: int, data: bytes, content_type: str) -> bool:
    """Whether a decode failure was the address-space limit: the worker came close to it, or its
    size now plus one 32-bit copy of the pixels (the decoder's first allocation) exceeds it."""
    status = _vm_status()
    if status.get("VmPeak", 0) > memory - 64 * 1024**2:
        return True
    try:
        pixels = header_pixels(data, content_type)
    except Exception:
        return False
    return status.get("VmSize", 0) + 4 * pixels > memory


def _vm_status() -> dict[str, int]:
    """VmPeak, VmSize, VmHWM (bytes) of this process, from /proc (Linux); {} elsewhere."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmPeak", "VmSize", "VmHWM"):
                    found[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return found
