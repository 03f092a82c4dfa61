"""Frozen dataclasses built from database rows: each field read from the column of the same name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

Columns = Callable[[Mapping[str, Any]], tuple[Any, ...]]


@cache
def _layout(cls: type[DataclassInstance]) -> tuple[tuple[str, ...], Columns]:
    """The field names of ``cls`` in declaration order, and a reader of those columns: looked up once per class."""
    names = tuple(f.name for f in fields(cls))
    if len(names) == 1:  # itemgetter of one key answers the value, not a 1-tuple
        return names, lambda row: (row[names[0]],)
    return names, itemgetter(*names)


def from_columns(cls: type[T], row: Mapping[str, Any], /, **given: Any) -> T:
    """``cls`` with every field read from the column of the same name, except those ``given`` here
    (a renamed or converted column, or a value that is not in the row).

    Positional and cached per class: as cheap as spelling the fields out (the worker builds one per inbox row).
    """
    make: Callable[..., T] = cls
    names, columns = _layout(cls)
    if not given:
        return make(*columns(row))
    return make(*[given[name] if name in given else row[name] for name in names])
