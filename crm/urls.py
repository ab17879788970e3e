"""URLs of the public client pages."""

from django.urls import path

from . import views

app_name = "clients"

urlpatterns = [
    path("", views.ClientListView.as_view(), name="list"),
    path("export.csv", views.ClientExportView.as_view(), name="export"),
    path("add/", views.ClientCreateView.as_view(), name="add"),
    path("<int:pk>/edit/", views.ClientUpdateView.as_view(), name="edit"),
    path("<int:pk>/delete/", views.ClientDeleteView.as_view(), name="delete"),
    # The older delete URL, kept working for bookmarks.
    path("<int:pk>/edit/delete/", views.ClientDeleteView.as_view()),
]
