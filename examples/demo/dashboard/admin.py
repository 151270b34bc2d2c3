from django.contrib import admin, messages

from dashboard.events import command_device_sync
from dashboard.models import (
    Device,
    DeviceMessage,
    EmailAttachment,
    InboundEmail,
    Reading,
)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "last_seen"]
    list_filter = ["kind"]
    search_fields = ["name"]
    actions = ["send_ping"]

    @admin.action(description="Send a 'ping' command to the selected devices")
    def send_ping(self, request, queryset):
        for device in queryset:
            command_device_sync(device.group, "ping")
        self.message_user(
            request, f"Sent 'ping' to {queryset.count()} device(s).", messages.SUCCESS
        )


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["device", "metric", "value", "at"]
    list_filter = ["metric", "device"]
    date_hierarchy = "at"


@admin.register(DeviceMessage)
class DeviceMessageAdmin(admin.ModelAdmin):
    list_display = ["device", "direction", "text", "at"]
    list_filter = ["direction", "device"]


class AttachmentInline(admin.TabularInline):
    model = EmailAttachment
    fields = ["filename", "content_type", "size"]
    readonly_fields = fields
    extra = 0


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    list_display = ["subject", "mail_from", "recipients", "received_at"]
    search_fields = ["subject", "mail_from", "text"]
    inlines = [AttachmentInline]
