import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.db import transaction

from crm import jobs
from crm.live.consumers import NOT_LOGGED_IN
from crm.models import Job, Order
from crm.spreadsheets.resources import OrderResource
from crm_site.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(autouse=True)
def _channel_layer_in_memory(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }


def session_cookie(client, user):
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def listen(headers, action=None):
    """Open the socket, run ``action``, return the messages that arrive."""

    async def run():
        socket = WebsocketCommunicator(application, "/ws/updates/", headers=headers)
        connected, code = await socket.connect()
        if not connected:
            return connected, code, []
        if action:
            await action()
        messages = []
        while not await socket.receive_nothing(timeout=0.5):
            messages.append(await socket.receive_json_from())
        await socket.disconnect()
        return connected, code, messages

    # Its own thread and loop: Playwright's tests leave a loop in this thread.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


def in_thread(function):
    from channels.db import database_sync_to_async

    return database_sync_to_async(function)


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("pat", "pat@mail.test", "pw")
    user.user_permissions.add(Permission.objects.get(codename="view_client"))
    return user


def test_anonymous_sockets_are_closed(client):
    connected, code, _ = listen([ORIGIN])
    assert not connected and code == NOT_LOGGED_IN


def test_sockets_from_other_sites_are_refused(client, staff):
    cookie = session_cookie(client, staff)
    connected, _, _ = listen([(b"origin", b"https://evil.example.org"), cookie])
    assert not connected
    connected, _, _ = listen([cookie])  # no Origin at all
    assert not connected


def test_a_new_order_reaches_open_pages_after_commit(client, staff, make_client):
    ann = make_client(name="Ann Archer", email="ann@mail.test")

    @in_thread
    def create():
        Order.objects.create(client=ann, title="Desk", amount="30.5")

    connected, _, messages = listen([ORIGIN, session_cookie(client, staff)], create)

    order = Order.objects.get()
    assert connected
    assert messages == [
        {
            "type": "order.created",
            "order": {
                "id": order.pk,
                "title": "Desk",
                "amount": "30.50",
                "status": "NEW",
            },
            "client": {"id": ann.pk, "name": "Ann Archer", "email": "ann@mail.test"},
        }
    ]


def test_a_rolled_back_order_sends_nothing(client, staff, make_client):
    ann = make_client()

    @in_thread
    def create_then_fail():
        try:
            with transaction.atomic():
                Order.objects.create(client=ann, title="Never", amount="1")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass

    _, _, messages = listen([ORIGIN, session_cookie(client, staff)], create_then_fail)

    assert messages == [] and not Order.objects.exists()


def test_users_who_may_not_see_clients_get_no_order_events(
    client, django_user_model, make_client
):
    nobody = django_user_model.objects.create_user("nobody", "n@mail.test", "pw")
    ann = make_client()

    @in_thread
    def create():
        Order.objects.create(client=ann, title="Desk", amount="1")

    connected, _, messages = listen([ORIGIN, session_cookie(client, nobody)], create)

    assert connected and messages == []


def test_an_import_sends_one_summary_not_a_message_per_order(
    client, staff, make_client
):
    make_client(email="ann@mail.test")
    lines = ["client,title,amount"] + [f"ann@mail.test,Item {n},1" for n in range(50)]

    @in_thread
    def import_orders():
        data = ("\r\n".join(lines) + "\r\n").encode()
        OrderResource().import_data(OrderResource.read_csv(data))

    _, _, messages = listen([ORIGIN, session_cookie(client, staff)], import_orders)

    assert messages == [{"type": "orders.imported", "count": 50}]


def test_a_job_owner_gets_its_progress(client, staff):
    job = Job.objects.create(
        kind="import", model_name="client", phase="preview", user=staff
    )

    @in_thread
    def progress():
        jobs.report_progress(job.pk, 40, 100, user_id=staff.pk)

    _, _, messages = listen([ORIGIN, session_cookie(client, staff)], progress)

    assert messages == [
        {
            "type": "job.progress",
            "job": {"id": job.pk, "state": "running", "done": 40, "total": 100},
        }
    ]
