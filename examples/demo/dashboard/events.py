"""Pushing events to the dashboard and commands to devices, from sync or async code."""

from typing import Any

from asgiref.sync import async_to_sync

from hub.layers import get_channel_layer

#: Every open dashboard page is in this group.
DASHBOARD_GROUP = "dashboard"


async def publish(kind: str, **data: Any) -> None:
    """Show an event on every dashboard: ``publish("reading", device="t1", value=21.5)``."""
    await get_channel_layer().group_send(
        DASHBOARD_GROUP, {"type": "dashboard.event", "kind": kind, "data": data}
    )


async def command_device(device_group: str, command: str) -> None:
    """Send ``command`` to the device connected in ``device_group``, whatever its protocol."""
    await get_channel_layer().group_send(
        device_group, {"type": "device.command", "command": command}
    )


publish_sync = async_to_sync(publish)
command_device_sync = async_to_sync(command_device)
