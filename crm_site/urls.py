"""Root URLs: public pages, auth, admin, media, health and the old redirects."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from crm import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="clients:list", query_string=True)),
    path("create/", RedirectView.as_view(pattern_name="clients:add")),
    path("update/<int:pk>/", RedirectView.as_view(pattern_name="clients:edit")),
    path("delete/<int:pk>/", RedirectView.as_view(pattern_name="clients:delete")),
    path("clients/", include("crm.urls")),
    path("health/", views.health, name="health"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="public/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("crm.api.urls")),
    # Avatars, for logged-in users only, in development and production alike.
    re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.+)$", views.media),
]

# A database that is away is a 503 saying so, not a 500.
handler500 = "crm.views.server_error"
