"""s3drop as a Django reusable app.

::

    INSTALLED_APPS = [..., "s3drop.integrations.django"]
    S3DROP = {"data_dir": BASE_DIR / "s3drop-data", "max_bytes": "5MiB"}   # s3drop.Settings
    # urls.py
    urlpatterns = [..., path("uploads/", include("s3drop.integrations.django.urls"))]

What it gives the host project:

- the JSON API under that prefix (``api/config``, ``api/uploads``, ``api/uploads/<id>/complete``,
  ``api/images``, ``api/images/<id>``, the stable ``api/images/<id>/original`` and ``.../thumbnail``
  redirects) for Django's signed-in user, with Django's CSRF check (the uploader element sends
  the ``csrftoken`` cookie's value in the ``X-CSRFToken`` header); anonymous visitors are refused
  (401) unless ``S3DROP_ALLOW_ANONYMOUS = True``, and then each session owns its own images;
- on the local backend, the storage endpoint the browser posts the signed form to (``storage``);
- :class:`~s3drop.integrations.django.fields.ImageIdField`, a model field holding an image id that
  checks the image exists and belongs to the row's user;
- :class:`~s3drop.integrations.django._widgets.UploaderWidget`, the ``<s3drop-uploader>`` element
  as a form widget;
- template tags (``{% load s3drop %}``): ``s3drop_url``, ``s3drop_thumbnail_url``, ``s3drop_img``;
- system checks (``s3drop.E001``...), signals (:mod:`.signals`) and pytest fixtures (:mod:`.fixtures`).
"""
