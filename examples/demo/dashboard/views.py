from django.conf import settings
from django.shortcuts import render

from dashboard.models import DeviceMessage, InboundEmail, Reading


def index(request):
    return render(
        request,
        "dashboard/index.html",
        {
            "readings": Reading.objects.select_related("device")[:20],
            "emails": InboundEmail.objects.all()[:10],
            "device_messages": DeviceMessage.objects.select_related("device")[:20],
            "listeners": getattr(settings, "HUB_DEMO_URLS", []),
        },
    )
