from __future__ import annotations

from django.conf import settings
from django.db import models

from s3drop.integrations.django.fields import ImageIdField


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    avatar = ImageIdField(owner="user", blank=True)
