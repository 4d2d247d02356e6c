"""The uploader element as a Django form widget.

Renders ``<s3drop-uploader>`` pointed at this app's API (wherever the project included its
URLs) with the field's name, so the element puts the accepted image's id into the form; the
form's ``media`` loads the element's script (a module served by this app, no build step and
no ``collectstatic`` needed). The current image, when the form edits a row that has one, is
shown with its thumbnail and kept unless the user uploads another or removes it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

#: The element's tag name.
TAG = "s3drop-uploader"


def api_base() -> str:
    """The API's base URL, as this project's URLconf mounts it (``/uploads/``)."""
    return reverse("s3drop:config").removesuffix("api/config")


class UploaderWidget(forms.Widget):
    """``<s3drop-uploader name=... api=... accept=... max-files=1>`` in a form."""

    template_name = "s3drop/uploader.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)

    @property
    def media(self) -> forms.Media:
        return forms.Media(js=[forms.Script(reverse("s3drop:element"), type="module")])  # type: ignore[list-item]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        attrs = {"max-files": "1", **(attrs or {})}
        attrs["api"] = api_base()
        context = super().get_context(name, value, attrs)
        context["widget"]["tag"] = TAG
        return context

    def format_value(self, value: Any) -> str | None:
        return str(value) if value else None

    def value_from_datadict(self, data: Any, files: Any, name: str) -> str | None:
        """The last non-empty id the form carries for ``name`` (the element's newest image)."""
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        chosen = [value for value in values if value]
        return chosen[-1] if chosen else None
