"""Django signals for what happens to images, sent from s3drop's hooks.

Connect receivers as with any Django signal::

    from django.dispatch import receiver
    from s3drop.integrations.django.signals import image_deleted

    @receiver(image_deleted)
    def forget(sender, image_id, principal, **kwargs):
        Profile.objects.filter(avatar=image_id).update(avatar="")

- ``image_accepted(image, principal)``: once per accepted image;
- ``image_rejected(upload_id, error, principal)``: once per refused upload (it was deleted);
- ``image_deleted(image_id, principal)``: an image was deleted (by the API, or the project's own
  code calling :func:`~.conf.get_drop`'s ``delete_image``).

``sender`` is the :class:`~s3drop.S3Drop`; ``principal`` is who called (None: a trusted caller).
A receiver that raises is logged and skipped, as every s3drop hook is: the image stays as it is.
"""

from __future__ import annotations

from django.dispatch import Signal

from ..._auth import Principal
from ..._errors import ImageRejected
from ..._gallery import Image
from ..._uploads import S3Drop

image_accepted = Signal()
image_rejected = Signal()
image_deleted = Signal()


def connect(drop: S3Drop) -> None:
    """Send the signals from ``drop``'s hooks."""

    def accepted(image: Image, principal: Principal | None) -> None:
        image_accepted.send(sender=drop, image=image, principal=principal)

    def rejected(upload_id: str, error: ImageRejected, principal: Principal | None) -> None:
        image_rejected.send(sender=drop, upload_id=upload_id, error=error, principal=principal)

    def deleted(image_id: str, principal: Principal | None) -> None:
        image_deleted.send(sender=drop, image_id=image_id, principal=principal)

    drop.on_accepted(accepted)
    drop.on_rejected(rejected)
    drop.on_deleted(deleted)
