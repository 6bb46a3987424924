"""`jax.experimental.checkify`: run-time checks (`check`, NaN, division by zero, out-of-bounds
indices) as functional error values that survive `jit`, `vmap`, `grad` and control flow.

    from transforms.experimental import checkify

    def f(x, i):
        checkify.check(i >= 0, "index needs to be non-negative, got {i}", i=i)
        return tnp.sin(x[i])

    err, y = T.jit(checkify.checkify(f, errors=checkify.all_checks))(x, -2)
    err.get()     # 'index needs to be non-negative, got -2 (`check` failed)'
    err.throw()   # raises checkify.JaxRuntimeError with that message

`checkify(f)` traces `f` to a jaxpr and evaluates it with an `Error` threaded through
(`_checkify_rules.py`): the checks become boolean predicates and int32 codes computed by the
program itself, so the compiled path needs nothing special. The error value and the `check`
primitive are in `_checkify_errors.py`. Outside `checkify`, a `check` raises at once when its
predicate is concrete (eagerly, under `grad`/`vmap`, or a constant under `jit`); staged with a
traced predicate it is JAX's functionalization `ValueError`. `debug_check` is dropped outside
`checkify`.
"""
from __future__ import annotations

import numpy as np

from .. import tree as tree_util
from ..core import Tracer, as_leaf, get_aval
from ..interpreters.partial_eval import trace_to_jaxpr, weakened
from ._checkify_errors import (BatchedError, DivisionByZeroError, Error, FailedCheckError,
                               JaxException, JaxRuntimeError, NaNError, OOBError, assert_func,
                               check_error_value, functionalizing, init_error)
from ._checkify_rules import checkify_jaxpr

__all__ = ["checkify", "check", "debug_check", "check_error", "Error", "JaxRuntimeError",
           "ErrorCategory", "init_error", "user_checks", "nan_checks", "index_checks",
           "div_checks", "float_checks", "automatic_checks", "all_checks",
           "JaxException", "FailedCheckError", "NaNError", "OOBError", "DivisionByZeroError",
           "BatchedError"]

ErrorCategory = type[JaxException]

for _cls in (Error, JaxRuntimeError, JaxException, FailedCheckError, NaNError, OOBError,
             DivisionByZeroError, BatchedError):
    _cls.__module__ = __name__      # shown in tracebacks as the public name

user_checks = frozenset({FailedCheckError})
nan_checks = frozenset({NaNError})
index_checks = frozenset({OOBError})
div_checks = frozenset({DivisionByZeroError})
float_checks = nan_checks | div_checks
automatic_checks = float_checks | index_checks
all_checks = automatic_checks | user_checks


def _validate_errors(errors):
    try:
        errors = frozenset(errors)
    except TypeError:
        raise TypeError("checkify: errors must be a set of error categories such as "
                        f"checkify.user_checks | checkify.nan_checks, got {errors!r}") from None
    bad = [e for e in errors if not (isinstance(e, type) and issubclass(e, JaxException))]
    if bad:
        names = sorted(c.__name__ for c in all_checks)
        raise TypeError(f"checkify: errors must contain error categories ({names}), "
                        f"got {bad!r}")
    return errors


def checkify(f, errors=user_checks):
    """Functionalize the `check`s of `f` (and add the automatic checks named by `errors`):
    the result takes `f`'s arguments and returns `(err, out)`, where `err.get()` is the
    message of the first failed check (None if none failed) and `err.throw()` raises it.

    `errors` is a frozen set of error categories: `user_checks` (default), `nan_checks` (a
    primitive produced a NaN), `div_checks` (a division by zero), `index_checks` (an
    out-of-bounds gather, scatter or dynamic slice), their unions `float_checks`,
    `automatic_checks`, `all_checks`, or any union of them. The result composes with `jit`,
    `vmap` (one error per mapped element), `grad` and the control-flow primitives."""
    if not callable(f):
        raise TypeError(f"checkify: f must be callable, got {type(f).__name__}")
    enabled = _validate_errors(errors)

    def checked(*args, **kwargs):
        flat, in_tree = tree_util.flatten((args, kwargs))
        leaves = [as_leaf(x, "checkify argument") for x in flat]
        weak = [type(x) in (bool, int, float, complex) or getattr(x, "weak_type", False)
                for x in flat]
        store = {}

        def flat_fun(*tracers):
            a, k = tree_util.unflatten(in_tree, [weakened(t) if w else t
                                                 for t, w in zip(tracers, weak)])
            out_flat, store["tree"] = tree_util.flatten(f(*a, **k))
            return [as_leaf(o, "checkify output") for o in out_flat]

        with functionalizing():
            closed = trace_to_jaxpr(flat_fun, [get_aval(x) for x in leaves])
        err, outs = checkify_jaxpr(closed.jaxpr, closed.consts, enabled, init_error, leaves)
        return err, tree_util.unflatten(store["tree"], outs)

    checked.__name__ = f"checkify({getattr(f, '__name__', 'f')})"
    checked.__doc__ = f.__doc__
    checked.__wrapped__ = f
    return checked


def _is_scalar_pred(pred):
    if isinstance(pred, (bool, np.bool_)):
        return True
    if isinstance(pred, (np.ndarray, Tracer)):
        a = get_aval(pred)
        return a.shape == () and a.dtype == np.bool_
    return False


def _check(pred, msg, debug, fmt_args, fmt_kwargs):
    name = "debug_check" if debug else "check"
    if not _is_scalar_pred(pred):
        raise TypeError(f"{name} takes a scalar pred as argument, got {pred!r}")
    if not isinstance(msg, str):
        raise TypeError(f"{name}: msg must be a str, got {type(msg).__name__}")
    for arg in tree_util.leaves((fmt_args, fmt_kwargs)):
        if not isinstance(arg, (np.ndarray, np.generic, Tracer)):
            raise TypeError("Formatting arguments to checkify.check need to be PyTrees of "
                            f"arrays, but got {arg!r} of type {type(arg)}.")
    from .. import numpy as tnp
    exc = FailedCheckError(msg, *fmt_args, **fmt_kwargs)
    # a concrete predicate stays concrete (NumPy), so that outside checkify it fails while
    # tracing rather than asking to be functionalized
    failed = tnp.logical_not(pred) if isinstance(pred, Tracer) else np.logical_not(pred)
    err = assert_func(init_error, failed, exc)
    check_error_value(err, debug=debug)


def check(pred, msg, *fmt_args, debug=False, **fmt_kwargs):
    """Fail with `msg` (a format string, formatted with the run-time values of `fmt_args` /
    `fmt_kwargs`, which must be arrays) when the scalar boolean `pred` is False.

    Inside `checkify` the failure becomes part of the returned error value. Outside it, a
    concrete `pred` raises `JaxRuntimeError` at once; a staged one (under `jit`, in a loop
    body) is the `ValueError` asking to functionalize it with `checkify`, as in JAX.
    `debug=True` is `debug_check`."""
    _check(pred, msg, debug, fmt_args, fmt_kwargs)


def debug_check(pred, msg, *fmt_args, **fmt_kwargs):
    """`check` under `checkify`; a no-op anywhere else (never raises outside checkify)."""
    _check(pred, msg, True, fmt_args, fmt_kwargs)


def check_error(error):
    """Raise `error` as `JaxRuntimeError` if it holds a failure (`error.throw()`), in a way
    `checkify` functionalizes again: a checkified function's error can be handed back to an
    enclosing `checkify`. A mapped error raises the message of its last failing element,
    as JAX does (`error.get()` lists them all)."""
    check_error_value(error)
