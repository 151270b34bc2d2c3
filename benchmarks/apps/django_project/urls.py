"""One view: ``GET /hello/`` answers ``Hello, world!`` as text/plain."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def hello(request: HttpRequest) -> HttpResponse:
    """A synchronous view, as most Django projects write them."""
    return HttpResponse(b"Hello, world!", content_type="text/plain")


urlpatterns = [path("hello/", hello)]
