"""Views of the public client pages and the health check."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.generic import CreateView, DeleteView, ListView, UpdateView, View

from .caching import client_list_page
from .exports import client_csv_chunks
from .forms import ClientForm
from .models import CLIENT_HAS_ORDERS, EMAIL_TAKEN, EMAIL_TAKEN_MESSAGE, Client


class PublicPageMixin(LoginRequiredMixin):
    """Require a login unless CRM_PUBLIC_LOGIN_REQUIRED is off."""

    def dispatch(self, request, *args, **kwargs):
        if not settings.CRM_PUBLIC_LOGIN_REQUIRED:
            return super(LoginRequiredMixin, self).dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)


class ClientListView(PublicPageMixin, ListView):
    template_name = "public/client_list.html"
    context_object_name = "clients"
    paginate_by = 10

    def get_queryset(self):
        return Client.objects.none()  # the page comes from client_list_page()

    def paginate_queryset(self, queryset, page_size):
        # A bad or out-of-range ?page= shows the nearest real page, never an error.
        page = client_list_page(
            self.request.GET.get("q"), self.request.GET.get("page"), page_size
        )
        return page.paginator, page, page.object_list, page.has_other_pages()

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            q=self.request.GET.get("q", "").strip(), **kwargs
        )


class ClientFormMixin(PublicPageMixin):
    model = Client
    form_class = ClientForm
    template_name = "public/client_form.html"
    success_url = reverse_lazy("clients:list")
    success_message = ""

    def form_valid(self, form):
        try:
            with transaction.atomic():
                self.object = form.save()
        except IntegrityError:
            # Another request saved the same email between validation and save.
            others = Client.objects.exclude(pk=form.instance.pk)
            if not others.filter(email=form.cleaned_data["email"]).exists():
                raise
            form.add_error("email", ValidationError(EMAIL_TAKEN_MESSAGE, EMAIL_TAKEN))
            return self.form_invalid(form)
        messages.success(self.request, self.success_message % {"client": self.object})
        return redirect(self.get_success_url())


class ClientCreateView(ClientFormMixin, CreateView):
    success_message = "Client %(client)s was added."


class ClientUpdateView(ClientFormMixin, UpdateView):
    success_message = "Client %(client)s was saved."


class ClientDeleteView(PublicPageMixin, DeleteView):
    model = Client
    template_name = "public/client_confirm_delete.html"
    success_url = reverse_lazy("clients:list")

    def get_context_data(self, **kwargs):
        has_orders = self.object.orders.exists()
        return super().get_context_data(has_orders=has_orders, **kwargs)

    def form_valid(self, form):
        try:
            self.object.delete()
        except ProtectedError:
            messages.error(self.request, CLIENT_HAS_ORDERS % {"client": self.object})
            return redirect("clients:delete", pk=self.object.pk)
        messages.success(self.request, f"Client {self.object} was deleted.")
        return redirect(self.success_url)


class ClientExportView(PublicPageMixin, View):
    """Stream the clients matching ?q= as a CSV file."""

    def get(self, request):
        response = StreamingHttpResponse(
            client_csv_chunks(request.GET.get("q")),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = 'attachment; filename="clients.csv"'
        return response


@never_cache
def health(request):
    """Answer ``ok`` when the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse(
            "database unavailable", status=503, content_type="text/plain"
        )
    return HttpResponse("ok", content_type="text/plain")
