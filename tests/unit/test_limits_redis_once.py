"""A Redis command that may have run is never sent again: a claim or a count is done once.

Between the store and Redis sits a TCP proxy that, once armed, forwards the next command to Redis
but keeps its answer: Redis ran it, the client's read times out. redis-py's ``Retry`` would send
it again on a fresh connection (a claim then finds itself already claimed, an add counts twice);
the store instead fails with ``LimitsUnavailable`` and leaves the one count Redis made.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from tests.conftest import run_async
from tests.redis_server import RedisServer

from s3drop._config import Settings
from s3drop._errors import LimitsUnavailable
from s3drop.limits import Limits, Take
from s3drop.limits.redis import RedisLimitStore


class AnswerEater:
    """A loopback TCP proxy to Redis; after :meth:`arm`, the next answer Redis sends is kept."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.eat = 0
        self.eaten: list[bytes] = []
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        with self.lock:
            self.eat = 1

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if answers:
                    with self.lock:
                        if self.eat:
                            self.eat -= 1
                            self.eaten.append(data)
                            continue
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def eater(redis_server: RedisServer) -> Iterator[AnswerEater]:
    parts = urlsplit(redis_server.url)
    proxy = AnswerEater((parts.hostname or "127.0.0.1", parts.port or 6379))
    yield proxy
    proxy.close()


def _store(
    eater: AnswerEater, redis_server: RedisServer
) -> tuple[RedisLimitStore, RedisLimitStore]:
    """The store through the proxy (a short timeout), and one straight to Redis to look."""
    through = RedisLimitStore(eater.url, timeout=0.3)
    assert through.take([Take("warm", 1, limit=10)], now=0.0) is None  # the scripts are loaded
    through.add("warm", 1, now=0.0)
    assert through.peek("warm", now=0.0) == 2  # a pooled connection, past its handshake
    return through, RedisLimitStore(redis_server.url)


def test_a_claim_whose_answer_was_lost_is_not_sent_again(
    eater: AnswerEater, redis_server: RedisServer
) -> None:
    through, direct = _store(eater, redis_server)
    eater.arm()
    with pytest.raises(LimitsUnavailable):
        Limits(Settings(), through).claim("upload-1")
    assert len(eater.eaten) == 1  # Redis ran the claim once, its answer never came
    assert direct.peek("upload:upload-1:promoted", now=0.0) == 1
    # sent again, it would have answered False: the upload "claimed by someone else", by nobody
    assert (
        Limits(Settings(), through).claim("upload-1") is False
    )  # and now it is, for real, claimed


def test_an_add_whose_answer_was_lost_counts_once(
    eater: AnswerEater, redis_server: RedisServer
) -> None:
    through, direct = _store(eater, redis_server)
    eater.arm()
    with pytest.raises(LimitsUnavailable):
        through.add("alice:images", 1, now=0.0)
    assert len(eater.eaten) == 1
    assert direct.peek("alice:images", now=0.0) == 1  # not 2
    through.add("alice:images", 1, now=0.0)  # the store works again at once
    assert direct.peek("alice:images", now=0.0) == 2


def test_a_take_whose_answer_was_lost_counts_once(
    eater: AnswerEater, redis_server: RedisServer
) -> None:
    through, direct = _store(eater, redis_server)
    eater.arm()
    with pytest.raises(LimitsUnavailable):
        through.take([Take("alice:signs", 1, limit=5, window=60)], now=0.0)
    assert direct.peek("alice:signs", window=60, now=0.0) == 1


def test_an_add_on_the_event_loop_whose_answer_was_lost_counts_once(
    eater: AnswerEater, redis_server: RedisServer
) -> None:
    through, direct = _store(eater, redis_server)

    async def add_twice() -> None:
        await through.add_async("bob:images", 1, now=0.0)  # the scripts, the hot connection
        eater.arm()
        with pytest.raises(LimitsUnavailable):
            await through.add_async("bob:images", 1, now=0.0)
        await through.aclose()

    run_async(add_twice())
    assert len(eater.eaten) == 1
    assert direct.peek("bob:images", now=0.0) == 2  # not 3
