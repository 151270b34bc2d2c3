"""Settings of hub's all-protocol demo: embedded defaults, nothing external.

SQLite, the in-memory channel layer and hub's own listeners, all on
127.0.0.1. Not for production: DEBUG is on and the secret key is public.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
#: Where the demo keeps its database; ``hub demo --data-dir`` changes it.
DATA_DIR = Path(os.environ.get("HUB_DEMO_DATA_DIR", BASE_DIR))

SECRET_KEY = "hub-demo-insecure-key-do-not-use-in-production"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "hub",
    "dashboard",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ASGI_APPLICATION = "demo.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "demo.sqlite3",
        "OPTIONS": {"timeout": 20},
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "hub.layers.InMemoryChannelLayer"}}
HUB_LISTENERS = [
    "http://127.0.0.1:8000",
    "mqtt://127.0.0.1:1883",
    "tcp://devices=127.0.0.1:7000?framing=line",
    "smtp://127.0.0.1:2525?auth_allow_plaintext=true",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
