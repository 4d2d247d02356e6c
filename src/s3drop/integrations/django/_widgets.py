"""The uploader element as a Django form widget.

Renders ``<s3drop-uploader>`` pointed at this app's API (wherever the project included its
URLs) with the field's name: the element puts the id of the image it uploaded into the form (it
is form-associated). The form's ``media`` loads a small module that imports the element and
gives it Django's CSRF token (a plain ES module served by this app: no build step and no
``collectstatic``). When the form edits a row that has an image, its thumbnail is shown and the
id kept (a hidden input) unless the user uploads another or ticks "Remove".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.urls import reverse

from ..._errors import NotFound
from ..._policy import is_upload_id

#: The element's tag name.
TAG = "s3drop-uploader"


def api_base() -> str:
    """The API's base URL, as this project's URLconf mounts it (``/uploads/api/``)."""
    return reverse("s3drop:config").removesuffix("config")


def _csrf_header() -> str:
    """``CSRF_HEADER_NAME`` as a browser sends it (``HTTP_X_CSRFTOKEN`` -> ``X-CSRFToken``)."""
    name: str = settings.CSRF_HEADER_NAME
    if name == "HTTP_X_CSRFTOKEN":
        return "X-CSRFToken"
    return "-".join(part.capitalize() for part in name.removeprefix("HTTP_").split("_"))


class UploaderWidget(forms.Widget):
    """``<s3drop-uploader name=... api=... max-files=1>`` in a form."""

    template_name = "s3drop/uploader.html"

    @property
    def media(self) -> forms.Media:
        script = forms.Script(reverse("s3drop:static", args=["s3drop-django.js"]), type="module")
        return forms.Media(js=[script])  # type: ignore[list-item]

    def use_required_attribute(self, initial: Any) -> bool:
        return super().use_required_attribute(initial) and not initial  # the kept image counts

    @staticmethod
    def clear_name(name: str) -> str:
        return f"{name}-clear"

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        attrs = {"max-files": "1", **(attrs or {})}
        attrs["api"] = api_base()
        attrs["data-csrf-header"] = _csrf_header()
        attrs["data-csrf-cookie"] = settings.CSRF_COOKIE_NAME
        context = super().get_context(name, value, attrs)
        context["widget"].update(
            tag=TAG, clear_name=self.clear_name(name), thumbnail_url=self._thumbnail(value)
        )
        return context

    @staticmethod
    def _thumbnail(value: Any) -> str:
        from .. import api
        from . import conf

        if not value or not is_upload_id(str(value)):
            return ""
        try:
            with conf.mounted():
                return api.image_url(conf.get_drop(), str(value), variant="thumbnail")
        except NotFound:
            return ""

    def format_value(self, value: Any) -> str | None:
        return str(value) if value else None

    def value_from_datadict(self, data: Any, files: Any, name: str) -> str | None:
        """The newest id the form carries for ``name`` (an upload wins over the kept image);
        "" when the user removed the current image and uploaded none."""
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        chosen = [value for value in values if value]
        if len(chosen) > 1 or (chosen and not data.get(self.clear_name(name))):
            return str(chosen[-1])
        if data.get(self.clear_name(name)):
            return ""
        return str(chosen[-1]) if chosen else None

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in data and self.clear_name(name) not in data
