"""A job's parameters as the server takes them: numbers, lists of numbers, matrices as lists
of rows, or text. numpy arrays and scalars are turned into those here, and values JSON cannot
carry are refused with the parameter's name before anything is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

#: What a parameter may be: a number, a 1-D or 2-D array of numbers (numpy or nested lists),
#: or a string (an enum choice such as an option's `style`).
ParamValue = Any


def _scalar(name: str, x: Any) -> int | float:
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"params.{name}: {x!r} is a bool; the server takes numbers (use 0 or 1)")
    if isinstance(x, Integral):
        return int(x)
    if isinstance(x, Real):
        value = float(x)
        if not math.isfinite(value):
            raise ValueError(f"params.{name}: {value} is not a finite number (JSON has no NaN or infinity)")
        return value
    raise TypeError(f"params.{name}: {x!r} is not a number")


def encode_value(name: str, value: ParamValue) -> Any:
    """One parameter as JSON: numbers stay numbers, a 1-D array a list, a 2-D array a list of
    rows (the server flattens it row-major), a string stays a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError:
            raise ValueError(
                f"params.{name}: rows of different lengths; a matrix's rows must all be one length"
            ) from None
        if array.dtype == np.bool_:
            raise TypeError(f"params.{name}: a bool array; the server takes numbers (use .astype(float))")
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise TypeError(f"params.{name}: arrays must hold real numbers, all rows one length (got {array.dtype})")
        if array.ndim > 2:
            raise ValueError(f"params.{name}: {array.ndim}-D array; send 1-D, or 2-D as rows (reshape it)")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ValueError(f"params.{name}: holds NaN or infinity, which JSON cannot carry")
        return array.tolist()
    return _scalar(name, value)


def encode_params(params: Mapping[str, ParamValue] | None) -> dict[str, Any]:
    """Every parameter as JSON, by name."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of name to value (got {type(params).__name__})")
    return {str(name): encode_value(str(name), value) for name, value in params.items()}
