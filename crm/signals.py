"""Signal receivers: the cached client list, live updates, permissions, avatars.

Bulk writes send no signals: the import resource calls
``invalidate_client_list()`` and ``live.events.orders_imported()`` itself. A
merge moves orders with one UPDATE but deletes the merged clients with
``QuerySet.delete()``, which signals each one (a receiver here keeps Django
from its fast, signal-less delete).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .avatars import delete_when_unused
from .caching import invalidate_client_list
from .history import record_history
from .live import events
from .models import KEY_FIELDS, Client, Order
from .permissions import invalidate_permissions

User = get_user_model()


@receiver(post_save, sender=Client)
@receiver(post_delete, sender=Client)
@receiver(post_save, sender=Order)
@receiver(post_delete, sender=Order)
def client_data_changed(**kwargs):
    invalidate_client_list()


@receiver(post_save, sender=Order)
def order_saved(instance, created, raw=False, **kwargs):
    # Every path that creates one order (admin page or inline, API, shell)
    # saves it; the event leaves once the transaction commits, never before.
    if created and not raw:
        events.order_created(instance)


@receiver(post_delete, sender=Client)
def delete_avatar_file(instance, **kwargs):
    delete_when_unused(instance.avatar.name, model=Client)


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
@receiver(post_save, sender=Group)
@receiver(post_delete, sender=Group)
@receiver(post_save, sender=Permission)
@receiver(post_delete, sender=Permission)
@receiver(post_delete, sender=User)
def permissions_changed(**kwargs):
    # A user's own save (a login, say) changes no permission; is_active and
    # is_superuser are read from the user's row on every request.
    invalidate_permissions()


@receiver(post_save, sender=Client)
@receiver(post_save, sender=Order)
def fixture_saved(sender, instance, raw=False, **kwargs):
    # A fixture (loaddata) saves raw, past KeyField.pre_save and the history:
    # fill its keys and its first history row.
    if not raw:
        return
    rows = sender.objects.filter(pk=instance.pk)
    if sender is Client:
        instance.refresh_keys()
        rows.update(**{name: getattr(instance, name) for name in KEY_FIELDS})
    record_history(rows, history_type="+", reason="Loaded from a fixture")
