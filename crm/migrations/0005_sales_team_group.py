# The "Sales team" group: giving a colleague the public pages and the everyday
# admin work is one click (add them to the group).

from django.contrib.auth.management import create_permissions
from django.db import migrations

SALES_TEAM = "Sales team"
PERMISSIONS = {
    "client": ("view", "add", "change", "delete", "export"),
    "order": ("view", "add", "change"),
}


def create_sales_team(apps, schema_editor):
    db = schema_editor.connection.alias
    # On a fresh database Django creates permissions only after the last
    # migration (post_migrate): create this app's now.
    crm = apps.get_app_config("crm")
    crm.models_module = True
    try:
        create_permissions(crm, apps=apps, verbosity=0, using=db)
    finally:
        crm.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(db).get_or_create(name=SALES_TEAM)
    codenames = [
        f"{action}_{model}"
        for model, actions in PERMISSIONS.items()
        for action in actions
    ]
    permissions = Permission.objects.using(db).filter(
        content_type__app_label="crm", codename__in=codenames
    )
    found = set(permissions.values_list("codename", flat=True))
    if found != set(codenames):
        raise RuntimeError(f"Missing permissions: {sorted(set(codenames) - found)}")
    group.permissions.add(*permissions)


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('crm', '0004_normalize_client_emails_and_phones'),
    ]

    operations = [
        # Unapplying keeps the group: staff may have given it members since.
        migrations.RunPython(create_sales_team, migrations.RunPython.noop),
    ]
