"""stop_gradient."""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ._util import as_array

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.def_impl(lambda x: x)
stop_gradient_p.def_abstract_eval(lambda x: x)
stop_gradient_p.def_jvp(lambda primals, tangents: (stop_gradient_p.bind(primals[0]), None))
stop_gradient_p.def_batch(lambda args, dims: (stop_gradient_p.bind(args[0]), dims[0]))


def stop_gradient(x):
    """Identity on a pytree of arrays whose derivative is zero."""
    from .. import tree

    def one(leaf):
        leaf = as_array(leaf)
        if not np.issubdtype(leaf.dtype, np.inexact):
            return leaf
        return stop_gradient_p.bind(leaf)
    return tree.map(one, x)
