"""``path("uploads/", include("s3drop.integrations.django.urls"))``: the API and the storage
endpoint, under whatever prefix the project chooses (the same paths as the bundled app's)."""

from __future__ import annotations

from django.urls import path, re_path

from . import _views as views

app_name = "s3drop"

urlpatterns = [
    path("api/config", views.config, name="config"),
    path("api/uploads", views.sign, name="sign"),
    path("api/uploads/<str:upload_id>/complete", views.complete, name="complete"),
    path("api/images", views.images, name="images"),
    path("api/images/<str:image_id>", views.image, name="image"),
    path("api/images/<str:image_id>/<str:variant>", views.image_file, name="image-file"),
    path("static/<str:name>", views.static, name="static"),
    path("storage", views.storage_post, name="storage"),
    path("storage/<path:key>", views.storage_get, name="storage-object"),
    re_path(r"^api/", views.no_such_call),  # anything else under api/: a JSON 404
]
