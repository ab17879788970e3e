"""ASGI entry point: the site over HTTP and live updates over websockets, one port."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings")
pages = get_wsgi_application()  # sets Django up: the routing below imports models

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from crm.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Pages go through Django's WSGI handler on a pool of threads, as in
        # gunicorn's gthread workers: for this site's (sync) views that serves
        # far more requests/s than Django's ASGI handler, which runs each view
        # through sync_to_async (docs/performance.md has the figures).
        "http": WSGIMiddleware(
            pages, workers=int(os.environ.get("GUNICORN_THREADS", "4"))
        ),
        # Only pages of this site may open the socket, with their session.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
