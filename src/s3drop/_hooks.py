"""Hooks: the host app's Python callbacks when an image is accepted, rejected or deleted.

Register them when building the library, or later (as decorators too)::

    drop = S3Drop(settings, on_accepted=save_photo_row)

    @drop.on_deleted
    def forget_photo(image_id: str, principal: Principal | None) -> None:
        Photo.objects.filter(image_id=image_id).delete()

The shapes:

- ``on_accepted(image: Image, principal: Principal | None)``: once per accepted image, after it
  was promoted, by the one call that promoted it (a retried or concurrent ``complete`` of the same
  id, in this process or another sharing the limits store, does not call it again);
- ``on_rejected(upload_id: str, error: ImageRejected, principal: Principal | None)``: once per
  refused upload, after it was deleted from quarantine;
- ``on_deleted(image_id: str, principal: Principal | None)``: after ``delete_image`` (and so
  ``s3drop rm``) removed an image.

``principal`` is who called (None: a trusted caller, such as the CLI's ``--direct`` or the host's
own code); ``image.owner`` is who uploaded. Callbacks run in the calling thread, after the storage
work is done, one after the other in the order they were registered. One that raises is logged to
the ``s3drop.hooks`` logger and skipped: the image stays as it is and the caller still gets its
answer. Signed webhooks (:mod:`s3drop.webhooks`) are one more listener of the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._auth import Principal
from ._errors import ImageRejected
from ._gallery import Image

logger = logging.getLogger("s3drop.hooks")

AcceptedHook = Callable[[Image, Principal | None], object]
RejectedHook = Callable[[str, ImageRejected, Principal | None], object]
DeletedHook = Callable[[str, Principal | None], object]


class Hooks:
    """The callbacks registered for each event, and the one place that calls them."""

    def __init__(self) -> None:
        self.accepted: list[AcceptedHook] = []
        self.rejected: list[RejectedHook] = []
        self.deleted: list[DeletedHook] = []

    def accept(self, image: Image, principal: Principal | None) -> None:
        for hook in list(self.accepted):
            _call(hook, "on_accepted", image.id, image, principal)

    def reject(self, upload_id: str, error: ImageRejected, principal: Principal | None) -> None:
        for hook in list(self.rejected):
            _call(hook, "on_rejected", upload_id, upload_id, error, principal)

    def delete(self, image_id: str, principal: Principal | None) -> None:
        for hook in list(self.deleted):
            _call(hook, "on_deleted", image_id, image_id, principal)


def _call(hook: Callable[..., object], event: str, about: str, *args: object) -> None:
    try:
        hook(*args)
    except Exception:
        # The image is stored (or deleted) whatever a callback does; say which one failed.
        name = getattr(hook, "__qualname__", repr(hook))
        logger.exception("%s callback %s failed for %s", event, name, about)
