"""The bounded decode sandbox: every decode of untrusted bytes runs in a worker process with limits.

:func:`s3drop._images.process` (the structure walk, the decode, orientation, the thumbnail, any
re-encode) is the expensive part of a completion, and a hostile file can make it very expensive: a
progressive JPEG that repeats its last scan a thousand times costs a minute of CPU, a 95 KB PNG
decodes to 400 MB. So it never runs in the server's own process:

- A :class:`DecodePool` keeps ``workers`` processes (one per core by default) plus one *small
  lane* worker that only takes images of at most :data:`SMALL_PIXELS` pixels, so a legitimate
  photo does not wait behind a queue of bombs. Waiting tasks are served smallest first (by the
  header's pixel count), each worker through its own pipe.
- Workers run at a lower CPU priority (``nice`` :data:`~s3drop._sandbox_worker.NICE`), so the
  server's own requests (listing, deleting, the probes) and a storage on the same machine are
  served first.
- Each worker runs under an address-space limit (``RLIMIT_AS``) and each task under a CPU-time
  limit: the parent reads the worker's CPU time (``/proc/<pid>/stat``) while it waits and kills it
  past the limit; ``RLIMIT_CPU`` is the backstop. A worker that hits a limit is killed and
  replaced; its task alone fails, with :class:`~s3drop._errors.TooExpensive`. (This is why the pool
  is not ``concurrent.futures.ProcessPoolExecutor``: there, one dead worker breaks the whole pool
  and every task in it.)
- Workers are plain ``python -c`` processes (:mod:`s3drop._sandbox_worker`) talking over a socket
  pair (not multiprocessing, so an embedding program's ``__main__`` is never imported again),
  started on first use (~0.3 s; the app starts the first one at start-up, :meth:`DecodePool.warm`).
  A worker serves many tasks; one whose peak memory passed :data:`RECYCLE_RSS` is retired after
  its task, so memory goes back to the operating system, and its replacement starts at once in
  the background, so the next task does not wait for it.
- At most ``queue`` callers wait; one more gets :class:`~s3drop._errors.ServerBusy` (503, with
  Retry-After). :meth:`DecodePool.close` kills the workers and fails the waiting and running tasks
  with ``ServerBusy`` at once (the app calls it on SIGTERM).

Peak memory of a server is therefore about ``(workers + 1) x memory`` plus the server process,
whatever the number of concurrent completions.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ._errors import CorruptImage, S3DropError, ServerBusy, TooExpensive
from ._images import ImageLimits, ProcessedImage
from ._sandbox_worker import _Worker

if TYPE_CHECKING:  # a type only: no pydantic import at run time
    from ._config import Settings

#: Images of at most this many pixels may use the small lane's worker (2000 x 2000).
SMALL_PIXELS = 4_000_000
#: A worker whose peak resident memory passed this is retired after its task.
RECYCLE_RSS = 192 * 1024**2
#: A worker is retired after this many tasks, whatever its memory.
RECYCLE_TASKS = 500
#: How often a waiting caller checks the worker's CPU time, in seconds.
POLL = 0.05
#: How long a new worker may take to import Pillow and say it is ready, in seconds.
STARTUP = 60.0
#: Retry-After of a busy answer, in seconds.
RETRY_AFTER = 5


_SHARED: dict[SandboxLimits, DecodePool] = {}
_SHARED_LOCK = threading.Lock()


@atexit.register
def _close_shared() -> None:
    for pool in list(_SHARED.values()):
        pool.close()


def _mib(size: int) -> str:
    value = size / 1024**2
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} MiB" if value < 1024 else f"{size / 1024**3:.1f}".removesuffix(".0") + " GiB"


@dataclass(frozen=True)
class SandboxLimits:
    """What one decode may cost."""

    workers: int
    cpu_seconds: float
    memory: int
    queue: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        return cls(
            workers=settings.decode_workers or os.cpu_count() or 2,
            cpu_seconds=settings.decode_cpu_seconds,
            memory=settings.decode_memory,
            queue=settings.decode_queue,
        )


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux), or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- the pool ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A place for one worker; ``max_pixels`` None takes any image."""

    max_pixels: int | None
    busy: bool = False
    worker: _Worker | None = None
    starting: threading.Lock = field(default_factory=threading.Lock)

    def fits(self, pixels: int) -> bool:
        return self.max_pixels is None or pixels <= self.max_pixels


@dataclass(order=True)
class _Waiting:
    pixels: int
    seq: int
    slot: _Slot | None = field(default=None, compare=False)


class DecodePool:
    """Worker processes that run :func:`s3drop._images.process` under CPU and memory limits.

    Thread-safe; callers block in :meth:`process` (on a pipe, not on the GIL). Workers start on
    first use. Build one per process (:class:`~s3drop._uploads.S3Drop` does).
    """

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._slots = [_Slot(None) for _ in range(limits.workers)] + [_Slot(SMALL_PIXELS)]
        self._lock = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._seq = itertools.count()
        self._closed = False

    @classmethod
    def shared(cls, limits: SandboxLimits) -> DecodePool:
        """The process's pool for ``limits``, made on first use (or after :meth:`close`): every
        :class:`~s3drop._uploads.S3Drop` with the same limits shares its workers."""
        with _SHARED_LOCK:
            pool = _SHARED.get(limits)
            if pool is None or pool.closed:
                pool = _SHARED[limits] = cls(limits)
            return pool

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def capacity(self) -> int:
        """How many tasks may be in the pool at once, running or waiting."""
        return len(self._slots) + self.limits.queue

    def pids(self) -> list[int]:
        """The live workers' process ids."""
        with self._lock:
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
        return [worker.pid for worker in workers]

    def process(
        self, data: bytes, content_type: str, limits: ImageLimits, *, pixels: int
    ) -> ProcessedImage:
        """:func:`s3drop._images.process` in a worker: its result, or its error.

        ``pixels`` (from the header) orders the queue, smallest first, and picks the lane. Raises
        :class:`~s3drop._errors.TooExpensive` past a limit, :class:`~s3drop._errors.ServerBusy`
        when the queue is full or the pool is closed.
        """
        slot = self._acquire(pixels)
        try:
            return self._run(slot, data, content_type, limits)
        finally:
            with self._lock:
                slot.busy = False
                self._lock.notify_all()

    def close(self) -> None:
        """Kill every worker and fail every waiting and running task (:class:`ServerBusy`)."""
        with self._lock:
            self._closed = True
            workers = [slot.worker for slot in self._slots if slot.worker is not None]
            for slot in self._slots:
                slot.worker = None
            self._lock.notify_all()
        for worker in workers:
            worker.kill()

    # --- scheduling

    def _acquire(self, pixels: int) -> _Slot:
        with self._lock:
            self._check_open()
            if len(self._waiting) >= self.limits.queue and not self._free_slot(pixels):
                raise ServerBusy(
                    f"every image decoder is busy and {len(self._waiting)} images are waiting; "
                    "try again in a few seconds",
                    retry_after=RETRY_AFTER,
                )
            me = _Waiting(pixels, next(self._seq))
            heapq.heappush(self._waiting, me)
            try:
                while True:
                    self._check_open()
                    slot = self._slot_for(me)
                    if slot is not None:
                        slot.busy = True
                        return slot
                    self._lock.wait()
            finally:
                self._waiting.remove(me)
                heapq.heapify(self._waiting)
                self._lock.notify_all()

    def _free_slot(self, pixels: int) -> bool:
        return any(not slot.busy and slot.fits(pixels) for slot in self._slots)

    def _slot_for(self, me: _Waiting) -> _Slot | None:
        """A free slot ``me`` fits that no earlier (smaller) waiting task also fits."""
        # Slots whose worker is up first: a task does not wait for a start it can avoid.
        for slot in sorted(self._slots, key=lambda slot: slot.worker is None):
            if slot.busy or not slot.fits(me.pixels):
                continue
            if any(other < me and slot.fits(other.pixels) for other in self._waiting):
                continue
            return slot
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise ServerBusy("the server is shutting down; try again", retry_after=RETRY_AFTER)

    # --- one task

    def _worker(self, slot: _Slot) -> _Worker:
        """The slot's worker, started now unless it is up (or being started: then waited for)."""
        with slot.starting:
            if slot.worker is None or not slot.worker.alive():
                slot.worker = self._start()
            return slot.worker

    def _start(self) -> _Worker:
        worker = _Worker(self.limits)
        try:
            if not worker.conn.poll(STARTUP) or worker.conn.recv() != "ready":
                raise EOFError
        except (EOFError, OSError):
            worker.kill()
            raise ServerBusy(
                "an image decoder did not start; try again", retry_after=RETRY_AFTER
            ) from None
        return worker

    def warm(self) -> None:
        """Start the first worker now, in the background (the app calls this at start-up), so the
        first completion does not wait for a start. The others start when first needed (a
        completion while every started worker is busy): an idle server keeps one decoder process
        rather than one per core plus the small lane."""
        self._refill(self._slots[0])

    def _refill(self, slot: _Slot) -> None:
        """Start a worker for ``slot`` in the background, so its next task finds one ready."""

        def start() -> None:
            with slot.starting:
                if self._closed or (slot.worker is not None and slot.worker.alive()):
                    return
                try:
                    worker = self._start()
                except ServerBusy:
                    return
                with self._lock:
                    if self._closed:
                        worker.kill()
                        return
                    slot.worker = worker

        threading.Thread(target=start, name="s3drop-decode-start", daemon=True).start()

    def _run(
        self, slot: _Slot, data: bytes, content_type: str, limits: ImageLimits
    ) -> ProcessedImage:
        worker = self._worker(slot)
        pid = worker.pid
        start = _cpu_seconds(pid) or 0.0
        cpu_limit = self.limits.cpu_seconds
        # A backstop for a worker that neither answers nor uses CPU (never seen; cheap to have).
        deadline = time.monotonic() + max(60.0, 10 * cpu_limit)
        try:
            worker.conn.send((content_type, limits))
            worker.conn.send_bytes(data)
            while not worker.conn.poll(POLL):
                if self._closed:
                    raise ServerBusy(
                        "the server is shutting down; try again", retry_after=RETRY_AFTER
                    )
                used = _cpu_seconds(pid)
                if used is not None and used - start > cpu_limit:
                    raise self._too_expensive_cpu()
                if time.monotonic() > deadline:
                    raise self._too_expensive_cpu()
                if not worker.alive() and not worker.conn.poll(0):
                    raise EOFError
            kind, value, peak, same = worker.conn.recv()
            if kind == "ok":
                assert isinstance(value, ProcessedImage)
                stored = worker.conn.recv_bytes()
                stored = data if same else stored  # unchanged: the bytes this side holds
                value = replace(value, data=stored, thumbnail=worker.conn.recv_bytes())
        except (EOFError, OSError, ServerBusy, TooExpensive) as exc:
            worker.kill()
            slot.worker = None
            if not self._closed:
                self._refill(slot)
            if isinstance(exc, ServerBusy | TooExpensive):
                raise
            raise self._died(worker) from None
        worker.tasks += 1
        if kind == "memory" or peak > RECYCLE_RSS or worker.tasks >= RECYCLE_TASKS:
            worker.retire()
            slot.worker = None
            self._refill(slot)
        if kind == "ok":
            assert isinstance(value, ProcessedImage)
            return value
        if kind == "memory":
            raise self._too_expensive_memory()
        assert isinstance(value, Exception)
        raise value

    def _too_expensive_cpu(self) -> TooExpensive:
        return TooExpensive(
            f"verifying the image took more than {self.limits.cpu_seconds:g} s of CPU time, the "
            "limit for one image; it was refused"
        )

    def _too_expensive_memory(self) -> TooExpensive:
        return TooExpensive(
            f"decoding the image needed more than {_mib(self.limits.memory)} of memory, the "
            "limit for one image; it was refused"
        )

    def _died(self, worker: _Worker) -> S3DropError:
        if self._closed:
            return ServerBusy("the server is shutting down; try again", retry_after=RETRY_AFTER)
        code = worker.process.poll()
        if code in (-signal.SIGXCPU, -signal.SIGKILL):
            return self._too_expensive_cpu()
        return CorruptImage(f"the image could not be decoded: the decoder stopped (exit {code})")
