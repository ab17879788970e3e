"""The staff workbench: the admin for clients and orders."""

from django.contrib import admin

from . import clients, jobs, orders, undo  # noqa: F401  (each registers its ModelAdmin)

admin.site.site_header = "Mini CRM"
admin.site.site_title = "Mini CRM"
admin.site.index_title = "Mini CRM"
# The app list beside every page would leave the client list too little room
# on a 1366-px-wide screen; the home page and the breadcrumbs lead everywhere.
admin.site.enable_nav_sidebar = False
