"""What the settings forms share: a value the console cannot turn into the object, whole numbers, and the rows of a
form (``<prefix><i>.<field>``)."""

from __future__ import annotations

import re
from collections.abc import Iterator


class Invalid(ValueError):
    """A form value the console cannot turn into the object; the message names the field."""


def number(data: dict[str, str], key: str, what: str) -> int | None:
    text = data.get(key, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise Invalid(f"{what}: {text!r} is not a whole number")
    return int(text)


def kept_rows(data: dict[str, str], prefix: str, field: str) -> Iterator[tuple[int, str]]:
    """``(i, value)`` of each row ``<prefix><i>.<field>`` the form sent, in order: a row whose ``field`` is empty, or
    marked ``<prefix><i>.remove``, is left out."""
    pattern = re.compile(rf"{re.escape(prefix)}(\d{{1,3}})\.{re.escape(field)}")
    for i in sorted({int(m[1]) for k in data if (m := pattern.fullmatch(k))}):
        value = data.get(f"{prefix}{i}.{field}", "").strip()
        if value and not data.get(f"{prefix}{i}.remove"):
            yield i, value
