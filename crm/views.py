"""Views of the public client pages and the health check."""

import posixpath
import sys

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages.views import SuccessMessageMixin
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import ProtectedError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse_lazy
from django.utils.functional import SimpleLazyObject
from django.utils.http import content_disposition_header
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.generic import CreateView, DeleteView, ListView, UpdateView, View
from django.views.static import serve

from .avatars import CONTENT_TYPES
from .caching import client_list_page, client_list_version, page_number
from .forms import ClientForm
from .health import report
from .models import CLIENT_HAS_ORDERS, EMAIL_TAKEN, EMAIL_TAKEN_MESSAGE, Client
from .spreadsheets.export import client_csv_chunks


def public_permissions(user):
    """Return what ``user`` may do on the public pages: ``{"add": True, ...}``.

    The admin's model permissions; everything while CRM_PUBLIC_LOGIN_REQUIRED
    is off (demo mode).
    """
    return {
        action: not settings.CRM_PUBLIC_LOGIN_REQUIRED
        or user.has_perm(f"crm.{action}_client")
        for action in ("view", "add", "change", "delete", "export")
    }


class PublicPageMixin(PermissionRequiredMixin):
    """Require the page's model permission, unless CRM_PUBLIC_LOGIN_REQUIRED is off.

    Anonymous users are sent to the login page; logged-in users without the
    permission get 403.
    """

    def has_permission(self):
        if not settings.CRM_PUBLIC_LOGIN_REQUIRED:
            return True  # demo mode: open to anyone
        return super().has_permission()


class ClientListView(PublicPageMixin, ListView):
    permission_required = "crm.view_client"
    template_name = "public/client_list.html"
    context_object_name = "clients"
    paginate_by = 10

    def get_queryset(self):
        return Client.objects.none()  # the page comes from client_list_page()

    def paginate_queryset(self, queryset, page_size):
        # A bad or out-of-range ?page= shows the nearest real page, never an
        # error. Read only if the template renders the rows: their HTML is
        # usually cached (see public/client_list.html).
        page = SimpleLazyObject(
            lambda: client_list_page(
                self.request.GET.get("q"), self.request.GET.get("page"), page_size
            )
        )
        return (
            SimpleLazyObject(lambda: page.paginator),
            page,
            SimpleLazyObject(lambda: page.object_list),
            SimpleLazyObject(lambda: page.has_other_pages()),
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            q=self.request.GET.get("q", "").strip(),
            can=public_permissions(self.request.user),
            # What the cached rows depend on, besides q and can.
            list_version=client_list_version(),
            page_asked=page_number(self.request.GET.get("page")),
            **kwargs,
        )


class ClientFormMixin(PublicPageMixin, SuccessMessageMixin):
    model = Client
    form_class = ClientForm
    template_name = "public/client_form.html"
    success_url = reverse_lazy("clients:list")

    def form_valid(self, form):
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except IntegrityError:
            # Another request saved the same email between validation and save.
            others = Client.objects.exclude(pk=form.instance.pk)
            if not others.filter(email=form.cleaned_data["email"]).exists():
                raise
            form.add_error("email", ValidationError(EMAIL_TAKEN_MESSAGE, EMAIL_TAKEN))
            return self.form_invalid(form)

    def get_success_message(self, cleaned_data):
        return self.success_message % {"client": self.object}


class ClientCreateView(ClientFormMixin, CreateView):
    permission_required = "crm.add_client"
    success_message = "Client %(client)s was added."


class ClientUpdateView(ClientFormMixin, UpdateView):
    permission_required = "crm.change_client"
    success_message = "Client %(client)s was saved."


class ClientDeleteView(PublicPageMixin, SuccessMessageMixin, DeleteView):
    permission_required = "crm.delete_client"
    model = Client
    template_name = "public/client_confirm_delete.html"
    success_url = reverse_lazy("clients:list")

    def get_context_data(self, **kwargs):
        if self.object.orders.exists():
            kwargs["has_orders"] = CLIENT_HAS_ORDERS % {"client": self.object}
        return super().get_context_data(**kwargs)

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ProtectedError:
            messages.error(self.request, CLIENT_HAS_ORDERS % {"client": self.object})
            return redirect("clients:delete", pk=self.object.pk)

    def get_success_message(self, cleaned_data):
        return f"Client {self.object} was deleted."


class ClientExportView(PublicPageMixin, View):
    """Stream the clients matching ?q= as a CSV file."""

    permission_required = "crm.export_client"

    def get(self, request):
        response = StreamingHttpResponse(
            client_csv_chunks(request.GET.get("q")),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="clients.csv"'
        return response


def media(request, path):
    """Serve an uploaded file (an avatar) to logged-in users only.

    Images go inline with their own type; anything else (a file stored before
    uploads were re-encoded) only as a download, never rendered from our
    origin. A sandboxing CSP keeps even a mislabelled file from running.
    """
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        response = serve(request, path, document_root=settings.MEDIA_ROOT)
    except (OSError, ValueError):  # a path no file system accepts (too long, NUL)
        raise Http404 from None
    name = posixpath.basename(path)
    content_type = CONTENT_TYPES.get(posixpath.splitext(name)[1].lower())
    if content_type:
        response["Content-Type"] = content_type
        response["Content-Disposition"] = content_disposition_header(False, name)
    else:
        response["Content-Type"] = "application/octet-stream"
        response["Content-Disposition"] = content_disposition_header(True, name)
    response.headers.pop("Content-Encoding", None)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=86400"
    return response


@never_cache
def health(request):
    """``ok`` (200) while the database answers, 503 when it does not; a line per
    dependency below. ``?strict=1`` is 503 when any dependency is away."""
    states = report()
    failing = [name for name, state in states.items() if not state.startswith("ok")]
    if "database" in failing:
        status, summary = 503, "database unavailable"
    elif failing:
        strict = request.GET.get("strict") in ("1", "true")
        status = 503 if strict else 200
        summary = ("" if strict else "ok, ") + "degraded: " + ", ".join(failing)
    else:
        status, summary = 200, "ok"
    lines = [summary, *(f"{name}: {state}" for name, state in states.items())]
    return HttpResponse(
        "\n".join(lines) + "\n", status=status, content_type="text/plain"
    )


def server_error(request):
    """Django's 500, except when the database is away: a 503 that says so."""
    error = sys.exc_info()[1]
    if isinstance(error, (OperationalError, InterfaceError)):
        response = HttpResponse(render_to_string("database_away.html"), status=503)
        response["Retry-After"] = "5"
        return response
    return defaults.server_error(request)
