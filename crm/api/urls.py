"""URLs of the REST API, its OpenAPI schema and its docs page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("clients", views.ClientViewSet)
router.register("orders", views.OrderViewSet)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("", include(router.urls)),
    # Any other /api/.../ answers in JSON too (``/api/orders/1.5/``); a path
    # without its final slash still gets Django's redirect.
    re_path(r"^.*/$", views.not_found),
]
