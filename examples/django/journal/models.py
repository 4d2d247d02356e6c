from __future__ import annotations

from django.conf import settings
from django.db import models

from s3drop.integrations.django.fields import ImageIdField


class Post(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    caption = models.CharField(max_length=200)
    photo = ImageIdField(owner="author")  # an s3drop image id, checked to be the author's
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
