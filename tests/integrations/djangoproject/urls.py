from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("uploads/", include("s3drop.integrations.django.urls"))]
