"""The one rule for a class name, on every path (API, pages, admin, the model field's validator), and
what two classes of a project may not share."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

LABEL_CLASS_NAME_MAX_LENGTH = 100
#: Characters no class name may hold: controls (NUL, tab, newline, DEL, C1), invisible format characters
#: (zero-width space, direction marks, soft hyphen), surrogates, line and paragraph separators.
_NOT_IN_NAMES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
#: Format characters that are part of writing: the zero-width non-joiner (Persian, Indic scripts) and
#: joiner (emoji such as 👩‍💻).
_JOINERS = {"\u200c", "\u200d"}


def label_class_name_clean(value: Any) -> str:
    """The one rule for a class name, on every path (API, pages, admin, the field's validator): text,
    trimmed of surrounding white space, not empty, at most ``LABEL_CLASS_NAME_MAX_LENGTH`` characters,
    no control or invisible characters (a class named with a NUL could never be labeled), no slashes
    and not ``.`` or ``..`` (exports name folders after classes). Returns the trimmed name; raises
    ``ValidationError`` saying what is wrong. Uniqueness in a project: ``label_class_name_key``."""
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:40] + "…"
        raise ValidationError(f"A class name must be text, not {shown}.", code="invalid")
    name = value.strip()
    if not name:
        raise ValidationError("A class name must not be empty.", code="invalid")
    if len(name) > LABEL_CLASS_NAME_MAX_LENGTH:
        limit = LABEL_CLASS_NAME_MAX_LENGTH
        raise ValidationError(f"Class name {name[:20]!r}… is longer than {limit} characters.", code="invalid")
    bad = next((c for c in name if unicodedata.category(c) in _NOT_IN_NAMES and c not in _JOINERS), None)
    if bad is not None:
        raise ValidationError(
            f"Class name {name!r} holds the control character U+{ord(bad):04X}; use visible characters.",
            code="invalid",
        )
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ValidationError(
            f"Class name {name!r} must not contain slashes or be . or .. (exports name folders after classes).",
            code="invalid",
        )
    return name


def label_class_name_key(name: str) -> str:
    """What two classes of a project may not share: names are unique whatever their case, since an
    export names a folder after each class and the file systems of macOS and Windows ignore case."""
    return name.casefold()


def validate_label_class_name(value: Any) -> None:
    """The rule as the field's validator (model forms, the admin): a stored name is already trimmed."""
    if label_class_name_clean(value) != value:
        raise ValidationError("A class name must not start or end with white space.", code="invalid")
