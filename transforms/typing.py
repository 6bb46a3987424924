"""`jax.typing`: annotations for array-accepting APIs.

`ArrayLike`: anything an operation accepts as an array (NumPy arrays and scalars, Python
scalars, traced values). `DTypeLike`: anything `numpy.dtype()` accepts.
"""
from __future__ import annotations

from typing import Any, Union

import numpy as np

from .core import Tracer

__all__ = ["ArrayLike", "DTypeLike"]

ArrayLike = Union[np.ndarray, np.generic, Tracer, bool, int, float, complex]
DTypeLike = Union[str, type, np.dtype, Any]
