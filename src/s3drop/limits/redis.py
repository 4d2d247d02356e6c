"""Counters in Redis, shared by every instance on every machine (``S3DROP_REDIS_URL``).

Every :meth:`~RedisLimitStore.take` is one round trip (and so is every
:meth:`~RedisLimitStore.take_many`: the signs the event loop batched), a Lua script (sent once, then called by its
SHA with ``EVALSHA``; loaded again if Redis forgot it) that checks every counter and adds to all or
none, atomically, so the limits are exact however many instances sign at once. A windowed counter
is one key per window (``s3drop:<key>:<window start>``) that expires on its own when its window has
passed; counters that never reset (stored images, upload claims) never expire.

The event loop awaits it (``redis.asyncio``, :class:`~s3drop.limits.base.AsyncLimitStore`); the
thread-pool side (completion, deletion) uses a synchronous client. When Redis does not answer
(down, unreachable, slower than :data:`TIMEOUT`), every call raises
:class:`~s3drop._errors.LimitsUnavailable`: signing fails closed with 503 and ``Retry-After``, and
works again by itself once Redis is back (each call reconnects).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import __version__
from .._errors import LimitsUnavailable
from .base import Full, Take, retry_after, window_start

#: Seconds to wait for Redis to connect or answer before the call fails (503).
TIMEOUT = 1.0
#: Seconds a client is told to wait before signing again while Redis is away.
RETRY_AFTER = 5
PREFIX = "s3drop:"

# KEYS: the counters of every list of takes, list after list. ARGV[i] (i <= #KEYS): counter i's
# "amount limit count ttl" (count: 1 adds, 0 only checks; ttl: seconds the key lives, 0 for ever),
# one argument per counter: fewer to encode and send. ARGV[#KEYS + j]: how many counters list j
# has. Each list is all or nothing on its own, in order. Returns one number per list: 0 when all
# of it fit (and was counted), else the 1-based index in the list of the first that did not.
_TAKE = """
local results = {}
local first = 1
for j = #KEYS + 1, #ARGV do
  local last = first + tonumber(ARGV[j]) - 1
  local takes = {}
  local full = 0
  for i = first, last do
    local amount, limit, count, ttl = string.match(ARGV[i], '(%S+) (%S+) (%S+) (%S+)')
    amount, limit = tonumber(amount), tonumber(limit)
    if tonumber(redis.call('GET', KEYS[i]) or '0') + amount > limit then
      full = i - first + 1
      break
    end
    takes[i] = {amount, count, tonumber(ttl)}
  end
  if full == 0 then
    for i = first, last do
      local amount, count, ttl = takes[i][1], takes[i][2], takes[i][3]
      if count == '1' and amount ~= 0 then
        redis.call('INCRBY', KEYS[i], amount)
        if ttl > 0 then
          redis.call('EXPIRE', KEYS[i], ttl)
        end
      end
    end
  end
  results[#results + 1] = full
  first = last + 1
end
return results
"""

# KEYS[1]: the counter. ARGV: amount (may be negative), seconds to live (0: none). Never below 0.
_ADD = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used < 0 then
  redis.call('SET', KEYS[1], 0, 'KEEPTTL')
end
if tonumber(ARGV[2]) > 0 and redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisLimitStore:
    """Counters in the Redis at ``url`` (``redis://[:password@]host[:port][/db]``,
    ``rediss://`` for TLS, ``unix:///path``)."""

    blocking = True  # the synchronous methods; the event loop uses the *_async ones

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.where = where_redis(url)
        self.timeout = timeout
        self._options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "health_check_interval": 30,
            **_driver_info(),
        }
        # One quick retry on a fresh connection (a connection Redis dropped when it restarted),
        # never a backoff: while Redis is away, fail at once and say so. Only reads (peek) and
        # connecting go through it: redis-py retries after a read timeout too, when Redis may
        # have run the command, so takes and adds are sent by _once, which never resends then.
        retry = redis.retry.Retry(NoBackoff(), 1)
        self._sync = redis.Redis.from_url(url, retry=retry, **self._options)
        self._sync_take = self._sync.register_script(_TAKE)
        self._sync_add = self._sync.register_script(_ADD)
        # redis.asyncio clients belong to the event loop they first ran on: one client a loop.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    # --- synchronous (threads)

    def take(self, takes: Sequence[Take], *, now: float) -> Full | None:
        return self.take_many([takes], now=now)[0]

    def take_many(self, batch: Sequence[Sequence[Take]], *, now: float) -> list[Full | None]:
        keys, args = _take_args(batch, now)
        with self._errors():
            found = self._once(_TAKE, self._sync_take.sha, keys, args)
        return _fulls(batch, found, now)

    def peek(self, key: str, *, window: int = 0, now: float) -> int:
        with self._errors():
            value = self._sync.get(_key(key, window, now))
        return int(value or 0)

    def add(self, key: str, amount: int, *, window: int = 0, now: float) -> None:
        with self._errors():
            keys, args = [_key(key, window, now)], [str(amount), str(_ttl(window, now))]
            self._once(_ADD, self._sync_add.sha, keys, args)

    def _once(self, script: str, sha: str, keys: list[str], args: list[str]) -> Any:
        """EVALSHA of ``script`` on a connection of the pool, sent once: a connection that fails
        while the command is being sent is made again and the command sent once more; one that
        fails after it was sent (a reset, a read timeout) is not, since Redis may have run it (a
        claim or a count done twice). The script is loaded first when Redis does not know it."""
        pool = self._sync.connection_pool
        connection: Any = pool.get_connection()  # redis-py's Connection is untyped
        try:
            command = [_pack(("EVALSHA", sha, str(len(keys)), *keys, *args))]
            unsent = loaded = 0
            while True:
                try:
                    connection.send_packed_command(command)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    connection.disconnect()
                    unsent += 1
                    if unsent == 2:  # while Redis is away, fail at once (no backoff)
                        raise
                    continue
                try:
                    return connection.read_response()
                except NoScriptError:
                    loaded += 1
                    if loaded == 2:
                        raise
                    connection.send_command("SCRIPT", "LOAD", script)
                    connection.read_response()
                except BaseException:
                    connection.disconnect()  # an answer half read poisons the connection
                    raise
        finally:
            pool.release(connection)

    # --- asynchronous (the event loop)

    async def take_async(self, takes: Sequence[Take], *, now: float) -> Full | None:
        return (await self.take_many_async([takes], now=now))[0]

    async def take_many_async(
        self, batch: Sequence[Sequence[Take]], *, now: float
    ) -> list[Full | None]:
        """:meth:`take_many` for the event loop: one round trip for every list."""
        keys, args = _take_args(batch, now)
        client = self._client()
        with self._errors():
            found = await client.take(keys=keys, args=args)
        return _fulls(batch, found, now)

    async def peek_async(self, key: str, *, window: int = 0, now: float) -> int:
        client = self._client()
        with self._errors():
            value = await client.redis.get(_key(key, window, now))
        return int(value or 0)

    async def add_async(self, key: str, amount: int, *, window: int = 0, now: float) -> None:
        client = self._client()
        with self._errors():
            keys, args = [_key(key, window, now)], [str(amount), str(_ttl(window, now))]
            await client.run(_ADD, client.add_script.sha, keys, args)

    def _client(self) -> _AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            retry = redis.asyncio.retry.Retry(NoBackoff(), 1)
            connection = redis.asyncio.Redis.from_url(self.url, retry=retry, **self._options)
            client = self._async[loop] = _AsyncClient(connection, timeout=self.timeout)
        return client

    async def aclose(self) -> None:
        """Close this event loop's connections (the app does at shutdown)."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close the synchronous client's connections."""
        self._sync.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A Redis error becomes LimitsUnavailable (its cause says where Redis is)."""
        try:
            yield
        except (RedisError, OSError) as exc:
            # What callers see names no address; /readyz adds the cause, which does.
            raise LimitsUnavailable(
                "the limits store (Redis) is not answering; nothing was signed or counted, try "
                "again shortly",
                retry_after=RETRY_AFTER,
            ) from exc


class _AsyncClient:
    """One event loop's side: a client (with its pool) for the occasional calls, and for the
    sign path one connection of its own, no pool, with the batcher sending one call at a time.

    A sign's take through the client costs the server ~60 us of CPU (command dispatch, pool
    checkout and release, the script object, the retry wrapper); the same EVALSHA sent on the
    connection directly ~30 us (with hiredis parsing the answer), and the event loop's batching
    (:mod:`s3drop.limits._batch`) sends one for all the signs waiting.
    """

    def __init__(self, connection: redis.asyncio.Redis, *, timeout: float) -> None:
        self.redis = connection
        self.take_script = connection.register_script(_TAKE)
        self.add_script = connection.register_script(_ADD)
        pool = connection.connection_pool
        self.hot: redis.asyncio.Connection = pool.make_connection()  # type: ignore[no-untyped-call]
        # One deadline for the whole call (below) instead of redis-py's per write and per read:
        # its write deadline is a new task (asyncio.wait_for) on every command.
        self.hot.socket_timeout = None
        self.timeout = timeout
        self.lock = asyncio.Lock()

    async def take(self, keys: list[str], args: list[str]) -> list[int]:
        found: list[int] = await self.run(_TAKE, self.take_script.sha, keys, args)
        return found

    async def run(self, script: str, sha: str, keys: list[str], args: list[str]) -> Any:
        """EVALSHA of ``script`` on the hot connection; the script is loaded first when Redis
        does not know it (it restarted, or SCRIPT FLUSH). A connection that fails while the
        command is being sent (Redis restarted since) is made again and the command sent once
        more; one that fails after it was sent is not, since Redis may have run it."""
        command = _pack(("EVALSHA", sha, str(len(keys)), *keys, *args))
        async with self.lock:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._once(command, script)
            except TimeoutError:
                await self.hot.disconnect()
                raise RedisTimeoutError(f"Redis did not answer within {self.timeout} s") from None

    async def _once(self, command: bytes, script: str) -> Any:
        unsent = loaded = 0
        while True:
            try:
                await self.hot.send_packed_command(command)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await self.hot.disconnect()
                unsent += 1
                if unsent == 2:  # while Redis is away, fail at once (no backoff)
                    raise
                continue
            try:
                return await self.hot.read_response()
            except NoScriptError:
                loaded += 1
                if loaded == 2:
                    raise
                await self.hot.send_command("SCRIPT", "LOAD", script)
                await self.hot.read_response()
            except BaseException:
                await self.hot.disconnect()  # an answer half read poisons the connection
                raise

    async def aclose(self) -> None:
        await self.hot.disconnect()
        await self.redis.aclose()


def _pack(args: Sequence[str]) -> bytes:
    """A command as RESP bytes: what redis-py's ``pack_command`` makes, in one join (it costs
    ~3 us an argument, ~25 us a sign in a batch of sixteen)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _driver_info() -> dict[str, Any]:
    """How connections introduce themselves (``CLIENT SETINFO``), worked out once: unless told,
    redis-py reads its version from the installed package's files for every new connection,
    which would be disk access on the event loop."""
    try:
        from redis.driver_info import DriverInfo  # redis-py 7.2 and later
    except ImportError:
        return {"lib_version": redis.__version__}
    info = DriverInfo(name="redis-py", lib_version=redis.__version__)
    return {"driver_info": info.add_upstream_driver("s3drop", __version__)}


def _key(key: str, window: int, now: float) -> str:
    return f"{PREFIX}{key}:{window_start(now, window)}" if window else PREFIX + key


def _ttl(window: int, now: float) -> int:
    """Seconds the window holding ``now`` has left, and one to spare (0: the key never expires)."""
    return int(window_start(now, window) + window - now) + 2 if window else 0


def _take_args(batch: Sequence[Sequence[Take]], now: float) -> tuple[list[str], list[str]]:
    keys = [_key(take.key, take.window, now) for takes in batch for take in takes]
    args = [
        f"{take.amount} {take.limit} {int(take.count)} {_ttl(take.window, now)}"
        for takes in batch
        for take in takes
    ]
    args.extend(str(len(takes)) for takes in batch)
    return keys, args


def _fulls(batch: Sequence[Sequence[Take]], found: list[int], now: float) -> list[Full | None]:
    results: list[Full | None] = []
    for takes, index in zip(batch, found, strict=True):
        if not index:
            results.append(None)
            continue
        take = takes[int(index) - 1]
        results.append(Full(take, retry_after(now, take.window)))
    return results


def where_redis(url: str) -> str:
    """``host:port`` (or the socket path) of ``url``: what messages name, never a password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
