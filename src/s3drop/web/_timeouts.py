"""A deadline for request bodies, on every route (the bundled app's outermost layer but one).

See :mod:`s3drop.web.connections` for the deadline on request heads and the connection cap.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import json_error


class BodyTimeoutMiddleware:
    """Answer 408 and close when a request body stops arriving for ``timeout`` seconds.

    uvicorn waits for a body as long as the client likes; this bounds each wait for the next piece
    of it (while the app asks for one), so a client that sends a head and then a trickle of body,
    or nothing, holds its connection ``timeout`` seconds at most. Once the body is complete, reads
    pass through untouched (a response listening for the client's disconnect is not cut).
    """

    def __init__(self, app: ASGIApp, *, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False
        started = False

        async def receive_in_time() -> Message:
            nonlocal body_done, timed_out, started
            if body_done:
                return await receive()
            if timed_out:
                return {"type": "http.disconnect"}
            # asyncio's own timeout: a timer handle, where anyio's cancel scope costs ~10 us a
            # request on the sign route's hot path.
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                timed_out = True
            else:
                body_done = message["type"] != "http.request" or not message.get("more_body")
                return message
            if not started:
                started = True
                await _send_timeout(send, self.timeout)
            return {"type": "http.disconnect"}

        async def send_unless_timed_out(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 went out; the app's own answer has no one to go to
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_in_time, send_unless_timed_out)
        except Exception:
            if not timed_out:
                raise  # else: the app saw the body end early and gave up; the 408 is the answer


async def _send_timeout(send: Send, seconds: float) -> None:
    message = f"the request body stopped arriving for {seconds:g} s"
    body = json.dumps(json_error("request_timeout", message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
