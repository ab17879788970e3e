"""Helpers shared by the test modules."""

import datetime

from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.utils import timezone


def changelist_rows(response):
    """Return the changelist's clients (or orders) in page order."""
    return list(response.context["cl"].result_list)


def messages_of(response):
    """Return the request's flash messages as ``(level, text)`` pairs."""
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def set_created(obj, *args):
    moment = timezone.make_aware(datetime.datetime(*args))
    type(obj).objects.filter(pk=obj.pk).update(created_at=moment)


SALES_TEAM_PERMISSIONS = (
    "view_client",
    "add_client",
    "change_client",
    "delete_client",
    "export_client",
    "view_order",
    "add_order",
    "change_order",
)


def sales_team_group():
    """Return the "Sales team" group, with its permissions.

    Migration crm/0005 makes it; a transactional test's flush removes it, so
    it is made again then, as the migration makes it.
    """
    group, created = Group.objects.get_or_create(name="Sales team")
    if created:
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="crm", codename__in=SALES_TEAM_PERMISSIONS
            )
        )
    return group
