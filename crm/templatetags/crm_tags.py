"""Template filters for Mini CRM pages."""

from django import template

from crm.formatting import format_money

register = template.Library()


@register.filter
def money(value):
    return format_money(value)
