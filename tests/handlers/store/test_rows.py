"""Frozen dataclasses from rows: every field from its column, some given, one-field classes too."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from handlers.store.rows import from_columns


@dataclass(frozen=True, slots=True)
class Pair:
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class Single:
    name: str


def test_reads_every_field_from_its_column_whatever_the_column_order() -> None:
    assert from_columns(Pair, {"size": 3, "name": "a", "extra": True}) == Pair("a", 3)


def test_given_values_stand_for_columns_the_row_lacks_or_that_need_converting() -> None:
    assert from_columns(Pair, {"name": "a", "size": "3"}, size=3) == Pair("a", 3)
    assert from_columns(Pair, {"name": "a"}, size=0) == Pair("a", 0)


def test_a_class_of_one_field_is_built_from_its_one_column() -> None:
    assert from_columns(Single, {"name": "a"}) == Single("a")


def test_a_missing_column_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="size"):
        from_columns(Pair, {"name": "a"})
