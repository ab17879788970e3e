"""Signal receivers: keep the cached client list in step with the database.

Bulk writes send no signals: the import resource calls
``invalidate_client_list()`` itself. A merge moves orders with one UPDATE but
deletes the merged clients one by one, which signals.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .caching import invalidate_client_list
from .models import Client, Order


@receiver(post_save, sender=Client)
@receiver(post_delete, sender=Client)
@receiver(post_save, sender=Order)
@receiver(post_delete, sender=Order)
def client_data_changed(**kwargs):
    invalidate_client_list()
