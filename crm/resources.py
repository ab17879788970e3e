"""CSV import/export resources, shared by the admin and the command line."""

from import_export import resources

from .models import Client, Order


class ClientResource(resources.ModelResource):
    class Meta:
        model = Client


class OrderResource(resources.ModelResource):
    class Meta:
        model = Order
