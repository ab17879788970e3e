"""The "possible duplicates" page and the merge page a group links to."""

from django.contrib import messages
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from ..models import Client
from .base import is_valid_pk
from .merge import MAX_CLIENTS, NEEDS_TWO, TOO_MANY, merge_confirmation

#: (key, tab title, what the clients of a group share)
KINDS = (
    ("email_key", "Same email", "the same email (letter case and +tags ignored)"),
    ("phone_key", "Same phone", "the same phone digits (+ and 00 alike)"),
    ("name_key", "Same name", "the same name (case, accents and spacing ignored)"),
)
GROUPS_PER_PAGE = 50
#: Clients shown per group; the merge page lists them all.
CLIENTS_SHOWN = 10


def duplicates_view(modeladmin, request):
    """List groups of clients that look like one person, a kind at a time."""
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    keys = [kind[0] for kind in KINDS]
    key = request.GET.get("kind")
    key = key if key in keys else keys[0]
    tabs = [
        {
            "key": name,
            "title": title,
            "count": Client.objects.duplicate_groups(name).count(),
            "url": "?" + urlencode({"kind": name}),
        }
        for name, title, _shares in KINDS
    ]
    paginator = Paginator(Client.objects.duplicate_groups(key), GROUPS_PER_PAGE)
    page = paginator.get_page(request.GET.get(PAGE_VAR))
    can_merge = modeladmin.has_merge_permission(request)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Possible duplicates",
        "subtitle": None,
        "opts": modeladmin.opts,
        "tabs": tabs,
        "kind": key,
        "shares": dict((k, s) for k, _t, s in KINDS)[key],
        "page": page,
        "page_var": PAGE_VAR,
        "groups": _groups(key, [row[key] for row in page], can_merge),
        "can_merge": can_merge,
        "max_clients": MAX_CLIENTS,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        [
            f"admin/{modeladmin.opts.app_label}/{modeladmin.opts.model_name}/"
            "duplicates.html",
            "admin/crm/duplicates.html",
        ],
        context,
    )


def _groups(key, values, can_merge):
    """Return each key's first clients, size and merge link, in three queries."""
    if not values:
        return []
    members = Client.objects.filter(**{f"{key}__in": values})
    ids = {}
    for value, pk in members.order_by(key, "created_at", "pk").values_list(key, "pk"):
        ids.setdefault(value, []).append(pk)
    shown = {}
    first = members.annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F(key)],
            order_by=[F("created_at").asc(), F("pk").asc()],
        )
    ).filter(rank__lte=CLIENTS_SHOWN)
    for client in first.with_order_totals().order_by(key, "created_at", "pk"):
        shown.setdefault(getattr(client, key), []).append(client)
    merge_url = reverse("admin:crm_client_merge")
    return [
        {
            "key": value,
            "clients": shown.get(value, []),
            "size": len(ids.get(value, [])),
            "more": max(len(ids.get(value, [])) - CLIENTS_SHOWN, 0),
            "merge_url": f"{merge_url}?{urlencode({'ids': _joined(ids[value])})}"
            if can_merge and 1 < len(ids.get(value, [])) <= MAX_CLIENTS
            else None,
        }
        for value in values
    ]


def _joined(pks):
    return ",".join(str(pk) for pk in pks)


def merge_view(modeladmin, request):
    """Show the merge page for the clients in ``?ids=1,2,3`` (a duplicates link)."""
    if not modeladmin.has_merge_permission(request):
        raise PermissionDenied
    changelist = reverse("admin:crm_client_changelist")
    ids = [value for value in request.GET.get("ids", "").split(",") if value]
    if not all(is_valid_pk(value) for value in ids):
        modeladmin.message_user(
            request, "The selection is not valid; nothing was done.", messages.ERROR
        )
        return redirect(changelist)
    if len(set(ids)) > MAX_CLIENTS:
        message = TOO_MANY % {"max": MAX_CLIENTS, "count": len(set(ids))}
        modeladmin.message_user(request, message, messages.WARNING)
        return redirect(changelist)
    clients = (
        modeladmin.get_queryset(request).filter(pk__in=ids).order_by("created_at", "pk")
    )
    if len(clients) < 2:
        modeladmin.message_user(request, NEEDS_TWO, messages.WARNING)
        return redirect(changelist)
    return merge_confirmation(modeladmin, request, clients, form_url=changelist)
