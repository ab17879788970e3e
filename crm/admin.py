"""Admin for clients and orders."""

from django.contrib import admin

from .models import Client, Order


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "vip", "created_at")
    search_fields = ("name", "email", "phone")
    list_filter = ("vip",)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("title", "client", "amount", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("client",)
    search_fields = ("title", "client__name", "client__email")
    raw_id_fields = ("client",)
