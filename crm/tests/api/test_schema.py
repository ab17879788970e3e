import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_is_openapi_3_and_lists_every_endpoint(anon):
    response = anon.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/clients/",
        "/api/clients/{id}/",
        "/api/clients/merge/",
        "/api/orders/",
        "/api/orders/{id}/",
    }
    parameters = {
        p["name"] for p in schema["paths"]["/api/orders/"]["get"]["parameters"]
    }
    assert parameters == {
        "status",
        "client",
        "search",
        "amount_min",
        "amount_max",
        "created_after",
        "created_before",
        "ordering",
        "page",
        "page_size",
    }
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_the_schema_validates(capsys):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_docs_page_loads_swagger_ui_from_our_own_static_files(anon):
    response = anon.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    )
    external = re.findall(r"""(?:src|href)=["'](https?:)?//""", html)
    assert external == []
