"""The base of every API input model: what no field of any request may carry.

Pydantic checks each field's type and bounds; this adds the rules that hold for every text and
every JSON value a caller sends, so no schema can forget them:

* no control characters (U+0000–U+001F, U+007F) in any string, keys of free-form objects
  included — PostgreSQL refuses U+0000 outright, and the others only ever hide mischief;
* no NaN or infinity anywhere (Python's JSON reader accepts them; nothing downstream should);
* no unknown fields (``extra="forbid"``): a misspelt field is an error, not silently dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_clean(value: Any) -> Any:
    """Raise ``ValueError`` if ``value`` holds a control character or a non-finite number."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed in text")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_clean(key)
            check_clean(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_clean(item)
    return value


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters_or_non_finite_numbers(cls, value: Any) -> Any:
        return check_clean(value)
