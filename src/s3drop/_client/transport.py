"""Requests to one s3drop server and its storage, retried while a failure is transient.

Connection errors, timeouts, 5xx and 429 with a short ``Retry-After`` are retried with exponential
backoff and jitter; refusals (any other 4xx) never are, and a server that never answered at all
(a wrong address, a server not started) is one :class:`~s3drop._errors.Unreachable` at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx

from .._errors import ConfigurationError, Unreachable
from .._version import __version__
from . import answers
from .answers import retry_after, without_query

DEFAULT_SERVER = "http://127.0.0.1:8000"
_NOT_RETRIED_5XX = {501, 505}


class Transport:
    """The HTTP side of a :class:`~s3drop._client.Client`: one connection pool, thread-safe.

    ``retries`` is how many times a transient failure is retried (so ``retries + 1`` attempts);
    the wait before retry ``n`` is a random time between half and all of
    ``min(max_backoff, backoff * 2**n)``, or the server's ``Retry-After`` when longer (a 429 whose
    ``Retry-After`` exceeds ``max_retry_after`` is not waited for).
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server = server_url(server)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        headers = {"User-Agent": f"s3drop/{__version__}"}
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout), transport=transport
        )
        self._token = token
        self._reached = False  # once the server answered, a lost connection is worth retrying

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, self.server + path, headers=self._auth, **kwargs)
        if not response.is_success:
            raise answers.exception_for(response)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried while the failure is transient; the last response otherwise.

        Each attempt is built again from the same ``kwargs``: a file in ``files`` is rewound to
        its first byte by httpx's encoder, so a retried upload sends the whole body again."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, **kwargs)
                self._reached = True
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
                if isinstance(exc, httpx.ConnectError) and not self._reached:
                    # Nothing ever answered there: a wrong address or a server not started.
                    # Retrying would only make the user wait for the same answer.
                    raise Unreachable(
                        f"cannot reach {without_query(url)}: {_describe(exc)} (is the server "
                        "running? --server or S3DROP_SERVER names it)"
                    ) from exc
                if attempt >= self.retries:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise Unreachable(
                        f"{method} {without_query(url)}: no answer after {tries} ({_describe(exc)})"
                    ) from exc
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            wait = self._retry_wait(response)
            if wait is None or attempt >= self.retries:
                return response
            response.close()
            self._sleep(max(wait, self._delay(attempt)))
            attempt += 1

    def _retry_wait(self, response: httpx.Response) -> float | None:
        """None unless ``response`` is worth retrying; then at least how long to wait."""
        status = response.status_code
        if status == 429:
            wait = retry_after(response)
            if wait is None or wait > self.max_retry_after:
                return None
            return wait
        if status >= 500 and status not in _NOT_RETRIED_5XX:
            # A fault of the server's setup answers the same until fixed: said at once.
            return None if answers.is_setup_failure(response) else 0.0
        if status == 400 and (answers.s3_error(response) or ("",))[0] == "RequestTimeout":
            return 0.0  # S3: the body was not sent fast enough; retrying is its own advice
        return None

    def _delay(self, attempt: int) -> float:
        cap = min(self.max_backoff, self.backoff * 2.0**attempt)
        return cap / 2 + random.uniform(0, cap / 2)


def server_url(server: str) -> str:
    """``127.0.0.1:8000`` -> ``http://127.0.0.1:8000/``: the base every API path joins to."""
    text = server.strip()
    if "://" not in text:
        text = f"http://{text}"
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"--server: not an http(s) URL: {server!r}")
    return str(url).rstrip("/") + "/"


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
