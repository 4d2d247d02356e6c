"""A model field that stores an s3drop image id, and its form field.

::

    class Profile(models.Model):
        user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
        avatar = ImageIdField(owner="user", blank=True)

The column holds the id alone (23 characters); everything else about the image is in storage.
On ``full_clean()`` (so in every ModelForm) and again on ``save()`` when the value is new, the
field checks that the image exists and, with ``owner=``, that it belongs to the user that
attribute of the row names (the same owner name the API records, see :mod:`.conf`; one HEAD,
no listing): an id typed
into a form, or someone else's, is refused with a ValidationError and nothing is saved.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from ..._auth import Principal
from ..._errors import Forbidden, NotFound, S3DropError
from ..._policy import is_upload_id
from ._widgets import UploaderWidget
from .conf import get_drop, principal_for_user

#: How long an image id is.
ID_LENGTH = 23


class ImageIdFormField(forms.CharField):
    """The form side: the uploader element, whose accepted image id the form submits."""

    widget = UploaderWidget

    def __init__(self, *, accept: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ID_LENGTH)
        super().__init__(**kwargs)
        if accept and isinstance(self.widget, UploaderWidget):
            self.widget.attrs["accept"] = accept

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        return {}  # no maxlength: the element is not a text input


class ImageIdField(models.CharField):  # type: ignore[type-arg]
    """An s3drop image id, checked to exist (and to be ``owner``'s) before it is stored."""

    description = "An s3drop image id"

    def __init__(self, *args: Any, owner: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ID_LENGTH)
        self.owner = owner
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == ID_LENGTH:
            del kwargs["max_length"]
        if self.owner is not None:
            kwargs["owner"] = self.owner
        return name, path, args, kwargs

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        super().validate(value, model_instance)
        if value not in self.empty_values:
            self.check_image(value, model_instance)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if value not in self.empty_values:
            self.check_image(value, model_instance)
        return value

    def check_image(self, value: str, model_instance: models.Model | None) -> None:
        """Refuse an id that names no stored image, or one that is not the row owner's.

        Checked once per value and row: a row saved again unchanged is not looked up again.
        """
        checked = f"_s3drop_checked_{self.attname}"
        if model_instance is not None and model_instance.__dict__.get(checked) == value:
            return
        if not isinstance(value, str) or not is_upload_id(value):
            raise ValidationError(
                "%(value)s is not an image id", code="invalid", params={"value": value}
            )
        expected = self._expected_owner(model_instance)
        principal = Principal(expected) if expected is not None else None
        try:  # one HEAD: the image exists, and (unless the gallery is shared) is the owner's
            get_drop().image_url(value, principal=principal)
        except NotFound:
            raise ValidationError(
                "no image %(value)s: it was never uploaded, was rejected or was deleted",
                code="image_missing",
                params={"value": value},
            ) from None
        except Forbidden:
            raise ValidationError(
                "image %(value)s belongs to someone else", code="not_owner", params={"value": value}
            ) from None
        except S3DropError as exc:
            raise ValidationError(exc.message, code=exc.code) from exc
        if model_instance is not None:
            model_instance.__dict__[checked] = value

    def _expected_owner(self, model_instance: models.Model | None) -> str | None:
        if self.owner is None:
            return None
        user = getattr(model_instance, self.owner, None) if model_instance is not None else None
        if user is None:
            raise ValidationError(
                "an image needs an owner: %(field)s is not set",
                code="no_owner",
                params={"field": self.owner},
            )
        return principal_for_user(user).name

    def formfield(self, **kwargs: Any) -> Any:
        kwargs.setdefault("form_class", ImageIdFormField)
        return super().formfield(**kwargs)
