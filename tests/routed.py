"""An in-process app in front of a real store: requests to the app's own URL
(:data:`tests.inprocess.BASE`) answered by the app in this process, every other one (Ceph RGW's
forms and signed URLs) sent over the network, as a browser or ``s3drop.client`` would send them.
For tests on RGW whose point is what the app and the store answer, not the app's process."""

from __future__ import annotations

from typing import Any

import httpx

from .inprocess import BASE, AppServer


class RoutedTransport(httpx.BaseTransport):
    """The app's origin to ``app``'s in-process transport; any other origin over the network."""

    def __init__(self, app: httpx.BaseTransport) -> None:
        self.app = app
        self.network = httpx.HTTPTransport()
        self.origin = httpx.URL(BASE)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.host, url.port) == (
            self.origin.scheme,
            self.origin.host,
            self.origin.port,
        ):
            return self.app.handle_request(request)
        return self.network.handle_request(request)

    def close(self) -> None:
        self.app.close()
        self.network.close()


def routed(server: AppServer) -> RoutedTransport:
    """A transport for ``s3drop.client.Client`` or ``httpx.Client``: ``server`` in-process, the
    store it signs for over the network."""
    return RoutedTransport(server.transport())


def routed_client(server: AppServer, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` at ``server``'s URL over :func:`routed`."""
    return httpx.Client(base_url=server.url, transport=routed(server), timeout=30, **kwargs)
