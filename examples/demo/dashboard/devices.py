"""The demo's device consumers: sensors over MQTT, trackers over raw TCP, and mail.

Each connected device joins the group ``device.<name>``, so a command from the
dashboard or the admin reaches it whatever its protocol: it arrives as a
``device.command`` event and the consumer turns it into an MQTT publish or a
line on the socket.
"""

from django.utils import timezone

from dashboard.events import publish
from dashboard.models import Device, DeviceMessage, EmailAttachment, InboundEmail, Reading
from hub.generic.mqtt import AsyncMqttConsumer, TopicRouter, topic
from hub.generic.smtp import AsyncSmtpConsumer
from hub.generic.tcp import AsyncLineConsumer
from protocols.mqtt.topics import topic_matches


class SensorConsumer(AsyncMqttConsumer):
    """A sensor: logs in with its name and token, publishes ``sensors/<name>/<metric>``."""

    routes = TopicRouter(
        [
            topic("sensors/<device>/ack", "ack"),
            topic("sensors/<device>/<metric>", "reading"),
        ]
    )

    async def authenticate(self, username, password):
        token = (password or b"").decode(errors="replace")
        return await Device.objects.filter(
            name=username, kind=Device.Kind.MQTT, token=token
        ).afirst()

    async def connect(self):
        self.groups = [self.user.group]

    async def connected(self):
        await Device.objects.filter(pk=self.user.pk).aupdate(last_seen=timezone.now())
        await publish("device", device=self.user.name, text="connected over MQTT")

    async def authorize_publish(self, topic_name):
        return any(topic_matches(allowed, topic_name) for allowed in self.user.topic_filters)

    async def authorize_subscribe(self, topic_filter, qos):
        return topic_filter in self.user.topic_filters

    async def reading(self, message, device, metric):
        value = float(message.text)
        await Reading.objects.acreate(device=self.user, metric=metric, value=value)
        await publish("reading", device=device, metric=metric, value=value)

    async def ack(self, message, device):
        await DeviceMessage.objects.acreate(
            device=self.user, direction=DeviceMessage.Direction.IN, text=message.text
        )
        await publish("ack", device=device, text=message.text)

    async def device_command(self, event):
        await DeviceMessage.objects.acreate(
            device=self.user, direction=DeviceMessage.Direction.OUT, text=event["command"]
        )
        await self.publish(f"commands/{self.user.name}", event["command"], qos=1)

    async def disconnect(self, event):
        if self.user is not None:
            await publish("device", device=self.user.name, text="disconnected")


class TrackerConsumer(AsyncLineConsumer):
    """A tracker on a line-based TCP protocol.

    The first line logs in (``<name> <token>``); then the device sends lines
    such as ``$POS,tracker-1,52.37,4.89`` and answers ``CMD <command>`` with
    ``ACK <command>``.
    """

    authentication = "first_frame"

    def authenticate(self, credentials):
        name, _, token = credentials.decode(errors="replace").strip().partition(" ")
        return Device.objects.filter(name=name, kind=Device.Kind.TCP, token=token).first()

    async def authenticated_device(self, device):
        self.groups.append(device.group)
        await self.channel_layer.group_add(device.group, self.channel_name)
        await Device.objects.filter(pk=device.pk).aupdate(last_seen=timezone.now())
        await publish("device", device=device.name, text="connected over TCP")

    async def receive_line(self, line):
        device = self.scope["device"]
        await DeviceMessage.objects.acreate(
            device=device, direction=DeviceMessage.Direction.IN, text=line
        )
        if line.startswith("ACK "):
            await publish("ack", device=device.name, text=line[4:])
        else:
            await publish("device", device=device.name, text=line)

    async def device_command(self, event):
        device = self.scope["device"]
        await DeviceMessage.objects.acreate(
            device=device, direction=DeviceMessage.Direction.OUT, text=event["command"]
        )
        await self.send_line(f"CMD {event['command']}")


class MailConsumer(AsyncSmtpConsumer):
    """Every message to the demo's SMTP listener is stored and shown on the dashboard."""

    async def message(self, envelope, email, **kwargs):
        stored = await InboundEmail.objects.acreate(
            mail_from=envelope.mail_from,
            recipients=", ".join(envelope.rcpt_tos),
            subject=email.subject,
            text=email.text,
        )
        attachments = email.attachments
        for attachment in attachments:
            await EmailAttachment.objects.acreate(
                email=stored,
                filename=attachment.filename or "",
                content_type=attachment.content_type,
                size=attachment.size,
                data=attachment.data,
            )
        await publish(
            "email",
            **{"from": envelope.mail_from, "subject": email.subject},
            attachments=[a.filename or a.content_type for a in attachments],
        )
        return f"demo-{stored.pk}"
