"""A photo journal: Django's auth, one model, and s3drop as a reusable app."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("JOURNAL_DATA", Path(__file__).resolve().parent.parent / "var"))

SECRET_KEY = os.environ.get("JOURNAL_SECRET_KEY", "journal-example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "s3drop.integrations.django",
    "journal",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "journal.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "journal.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "posts"
LOGOUT_REDIRECT_URL = "login"

# s3drop: its settings (s3drop.Settings fields); the embedded local backend here.
S3DROP = {"data_dir": DATA / "s3drop", "max_bytes": "5MiB"}
