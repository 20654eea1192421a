"""One helper shared by the command line and the figure builder: values made safe for ``json.dumps``."""

from __future__ import annotations

import math


def json_safe(value):
    """JSON-safe: numpy scalars to numbers, tuples to lists, dict keys to strings, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
