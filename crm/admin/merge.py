"""The "merge selected clients" action and its confirmation page."""

import logging

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import DatabaseError
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from ..services import ALREADY_MERGED, MergeError, client_merge

logger = logging.getLogger(__name__)

NEEDS_TWO = "Select at least two clients to merge."
#: The confirmation page sends every selected id back: with the few other
#: fields it must stay under DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000), or Django
#: would refuse the confirm with a bare "400 Bad Request".
MAX_CLIENTS = 500
TOO_MANY = (
    "Select at most %(max)d clients to merge at once (%(count)d were selected). "
    "Nothing was merged: merge them in smaller groups."
)


class MergeForm(forms.Form):
    """The survivor of a merge, chosen among the selected clients."""

    survivor = forms.ModelChoiceField(
        queryset=None,
        widget=forms.RadioSelect,
        empty_label=None,
        error_messages={
            "required": "Choose the client to keep. Nothing was merged.",
            "invalid_choice": (
                "Choose the client to keep from the selected clients. "
                "Nothing was merged."
            ),
        },
    )

    def __init__(self, *args, clients, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].queryset = clients
        self.fields["survivor"].initial = clients[0] if clients else None


@admin.action(description="Merge selected clients", permissions=["merge"])
def merge_clients(modeladmin, request, queryset):
    """Merge the selected clients into one, after a confirmation page."""
    if (count := queryset.count()) > MAX_CLIENTS:
        message = TOO_MANY % {"max": MAX_CLIENTS, "count": count}
        modeladmin.message_user(request, message, messages.WARNING)
        return None
    if request.POST.get("post"):
        return _merge_confirmed(modeladmin, request, queryset)
    clients = queryset.order_by("created_at", "pk")  # the oldest is the default
    if len(clients) < 2:
        modeladmin.message_user(request, NEEDS_TWO, messages.WARNING)
        return None
    return merge_confirmation(modeladmin, request, clients)


def merge_confirmation(modeladmin, request, clients, form_url=None):
    """Return the page that asks which of ``clients`` survives the merge.

    Its form posts the merge action to ``form_url`` (this page's own address
    when None: the changelist that ran the action).
    """
    opts = modeladmin.model._meta
    context = {
        "form_url": form_url,
        **modeladmin.admin_site.each_context(request),
        "title": "Merge clients",
        "subtitle": None,
        "form": MergeForm(clients=clients),
        "clients": clients,
        "opts": opts,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(
        request,
        getattr(modeladmin, "merge_confirmation_template", None)
        or [
            f"admin/{opts.app_label}/{opts.model_name}/merge_confirmation.html",
            f"admin/{opts.app_label}/merge_confirmation.html",
            "admin/merge_confirmation.html",
        ],
        context,
    )


def _merge_confirmed(modeladmin, request, queryset):
    """Run a confirmed merge and report the outcome with a message."""
    clients = list(queryset.order_by("pk"))
    requested = set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
    if len(clients) != len(requested):
        modeladmin.message_user(request, ALREADY_MERGED, messages.ERROR)
        return None
    if len(clients) < 2:
        modeladmin.message_user(request, NEEDS_TWO, messages.WARNING)
        return None
    form = MergeForm(request.POST, clients=queryset)
    if not form.is_valid():
        modeladmin.message_user(
            request, " ".join(form.errors["survivor"]), messages.ERROR
        )
        return None

    survivor = form.cleaned_data["survivor"]
    others = [client for client in clients if client.pk != survivor.pk]
    try:
        result = client_merge(survivor=survivor, others=others, user=request.user)
    except MergeError as error:
        modeladmin.message_user(request, " ".join(error.messages), messages.ERROR)
        return None
    except DatabaseError:
        logger.exception("Merging clients %s failed", [c.pk for c in clients])
        modeladmin.message_user(
            request,
            "The merge failed and was rolled back; nothing was changed.",
            messages.ERROR,
        )
        return None
    message = str(result)
    if result.record is not None:
        url = reverse("admin:crm_mergerecord_change", args=(result.record.pk,))
        message = format_html('{} <a href="{}">Undo it…</a>', message, url)
    modeladmin.message_user(request, message, messages.SUCCESS)
    return None
