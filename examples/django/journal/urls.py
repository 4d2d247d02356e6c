from __future__ import annotations

from django.contrib.auth import views as auth
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.posts, name="posts"),
    path("signup", views.signup, name="signup"),
    path("login", auth.LoginView.as_view(template_name="journal/login.html"), name="login"),
    path("logout", auth.LogoutView.as_view(), name="logout"),
    path("uploads/", include("s3drop.integrations.django.urls")),
]
