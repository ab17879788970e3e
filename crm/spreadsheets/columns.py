"""The client and order CSV columns: the one definition imports and exports use."""

from dataclasses import dataclass

from import_export import fields

from .widgets import (
    CellWidget,
    ClientEmailWidget,
    DateTimeWidget,
    EmailWidget,
    MoneyWidget,
    NumberWidget,
    PhoneWidget,
    StatusWidget,
    TextWidget,
    YesNoWidget,
)

#: Excel reads a UTF-8 file as UTF-8 only when it starts with this mark.
BOM = "\ufeff"


@dataclass(frozen=True)
class Column:
    name: str
    widget: CellWidget
    #: The model attribute (or annotation) the column holds; default ``name``.
    attribute: str = ""
    #: What the streamed export reads from the database; default ``attribute``.
    lookup: str = ""
    #: Exported for reference, never imported.
    readonly: bool = False

    def __post_init__(self):
        object.__setattr__(self, "attribute", self.attribute or self.name)
        object.__setattr__(self, "lookup", self.lookup or self.attribute)

    def as_field(self):
        """Return the column as a django-import-export field."""
        return fields.Field(
            attribute=self.attribute,
            column_name=self.name,
            widget=self.widget,
            readonly=self.readonly,
            # A blank yes/no or status cell keeps the value (or the default).
            saves_null_values=not isinstance(self.widget, YesNoWidget | StatusWidget),
        )


def names(columns):
    return tuple(column.name for column in columns)


CLIENT_COLUMNS = (
    # Ids are exported for reference and never used to match rows.
    Column("id", NumberWidget(), readonly=True),
    Column("name", TextWidget()),
    Column("email", EmailWidget()),
    Column("phone", PhoneWidget()),
    Column("vip", YesNoWidget()),
    Column("created_at", DateTimeWidget(), readonly=True),
    Column("order_count", NumberWidget(), readonly=True),
    Column("total_amount", MoneyWidget(), readonly=True),
)

ORDER_COLUMNS = (
    Column("id", NumberWidget(), readonly=True),
    Column("client", ClientEmailWidget(), lookup="client__email"),
    Column("title", TextWidget()),
    Column("amount", MoneyWidget()),
    Column("status", StatusWidget()),
    Column("created_at", DateTimeWidget(), readonly=True),
)
