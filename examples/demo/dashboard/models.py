"""What the demo stores: devices, their readings and messages, and inbound mail."""

from django.db import models


class Device(models.Model):
    """A device that may connect over MQTT or raw TCP, with its credential."""

    class Kind(models.TextChoices):
        MQTT = "mqtt", "MQTT"
        TCP = "tcp", "Raw TCP"

    name = models.SlugField(unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MQTT)
    token = models.CharField(max_length=64, help_text="Password (MQTT) or first line (TCP).")
    allowed_topics = models.TextField(
        blank=True, help_text="MQTT topic filters this device may use, one per line."
    )
    last_seen = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def topic_filters(self) -> list[str]:
        """The MQTT topic filters this device may publish to or subscribe to."""
        return [line.strip() for line in self.allowed_topics.splitlines() if line.strip()]

    @property
    def group(self) -> str:
        """The channel layer group a device's connection joins, for commands."""
        return f"device.{self.name}"


class Reading(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="readings")
    metric = models.CharField(max_length=32)
    value = models.FloatField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]


class DeviceMessage(models.Model):
    """A line a device sent, or a command sent to it."""

    class Direction(models.TextChoices):
        IN = "in", "from device"
        OUT = "out", "to device"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    text = models.TextField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]


class InboundEmail(models.Model):
    mail_from = models.CharField(max_length=254)
    recipients = models.TextField()
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.subject or "(no subject)"


class EmailAttachment(models.Model):
    email = models.ForeignKey(InboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127)
    size = models.PositiveIntegerField()
    data = models.BinaryField()
