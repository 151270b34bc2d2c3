"""Health, readiness and metrics endpoints, and the admin's "Hub status" page.

Include them with ``path("hub/", include("hub.urls"))``:

- ``hub/health/``: 200 while the process serves (liveness).
- ``hub/ready/``: 200 when this process should get traffic; 503 while it
  drains for shutdown or while its channel layer's backend is unreachable
  (readiness: load balancers stop sending it new connections).
- ``hub/metrics/``: Prometheus metrics (needs ``prometheus-client``).
- ``hub/status/``: the live status page, for staff (linked from the admin).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from hub.layers import get_channel_layer
from hub.status import STATUS

#: Seconds the readiness check waits for the channel layer's backend.
LAYER_CHECK_TIMEOUT = 2.0


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


async def ready(request: HttpRequest) -> HttpResponse:
    problems = []
    if STATUS.draining:
        problems.append("draining for shutdown")
    layer = get_channel_layer()
    if layer is not None and hasattr(layer, "ping"):
        try:
            await asyncio.wait_for(layer.ping(), LAYER_CHECK_TIMEOUT)
        except Exception as exc:
            problems.append(f"channel layer unreachable: {type(exc).__name__}: {exc}")
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ready"})


def metrics(request: HttpRequest) -> HttpResponse:
    from hub.metrics import exposition

    return HttpResponse(exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")


@staff_member_required
def status(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"title": "Hub status", "snapshot": STATUS.snapshot()}
    return render(request, "hub/status.html", context)
