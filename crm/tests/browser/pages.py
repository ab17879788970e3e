"""What the browser tests do and look for on Mini CRM pages."""

import re

from playwright.sync_api import expect


def path_is(path):
    """Return a URL pattern matching ``path`` (with any query) on any host."""
    return re.compile(r"^https?://[^/]+" + re.escape(path) + r"(\?.*)?$")


def scrolls_sideways(page):
    """Return True when the document is wider than the viewport."""
    return page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def public_rows(page):
    return page.locator("table tbody tr")


def public_row(page, text):
    return public_rows(page).filter(has_text=text)


def admin_rows(page):
    return page.locator("#result_list tbody tr")


def admin_row(page, name):
    """Return the changelist row whose name link is exactly ``name``."""
    link = page.get_by_role("link", name=name, exact=True)
    return admin_rows(page).filter(has=link)


def admin_column(page, field):
    """Return the texts of one changelist column, top to bottom."""
    return admin_rows(page).locator(f"td.field-{field}, th.field-{field}")


def run_admin_action(page, action, *names):
    """Tick the named clients on the changelist and run ``action`` on them."""
    for name in names:
        admin_row(page, name).locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_contain_text(f"{len(names)} of")
    page.locator("select[name=action]").select_option(label=action)
    page.get_by_role("button", name="Go").click()


def admin_messages(page, level="success"):
    return page.locator(f"ul.messagelist li.{level}")


def read_download(download):
    """Return the bytes of a finished download."""
    with open(download.path(), "rb") as file:
        return file.read()
