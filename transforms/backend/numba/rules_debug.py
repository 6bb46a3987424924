"""Lowerings of the debugging/annotation primitives: `name` (`checkpoint_name`, an identity)."""
from __future__ import annotations

from .rules_elementwise import register_pointwise


@register_pointwise("name")
def _name(ctx, x, *, name):
    return x
