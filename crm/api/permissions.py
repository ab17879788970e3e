"""Who may use the API: readers need the view permission, writers are staff."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission

STAFF_ONLY = "Only staff users may change data through the API."


class CrmModelPermissions(BasePermission):
    """The admin's model permissions, as on the public pages (crm/views.py).

    Reading needs ``view_<model>``, or nothing while
    CRM_PUBLIC_LOGIN_REQUIRED is off (demo mode). Writing needs a staff user
    with ``add_``/``change_``/``delete_<model>``; a view's ``action_permissions``
    names what its own actions need (merge: change and delete). Refused
    anonymous requests get 401, refused users 403.
    """

    perms_map = {
        "GET": ("view",),
        "HEAD": ("view",),
        "OPTIONS": (),
        "POST": ("add",),
        "PUT": ("change",),
        "PATCH": ("change",),
        "DELETE": ("delete",),
    }

    def required_permissions(self, request, view):
        special = getattr(view, "action_permissions", {}).get(
            getattr(view, "action", None)
        )
        if special is not None:
            return special
        if not hasattr(view, "get_queryset"):
            return ()  # the API root: a list of links, for any logged-in user
        opts = view.get_queryset().model._meta
        return tuple(
            f"{opts.app_label}.{action}_{opts.model_name}"
            for action in self.perms_map.get(request.method, ("change",))
        )

    def has_permission(self, request, view):
        reading = request.method in SAFE_METHODS
        if reading and not settings.CRM_PUBLIC_LOGIN_REQUIRED:
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401: not logged in
        if not reading and not user.is_staff:
            self.message = STAFF_ONLY
            return False
        return user.has_perms(self.required_permissions(request, view))
