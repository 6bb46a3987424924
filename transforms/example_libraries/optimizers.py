"""`jax.example_libraries.optimizers`: optimizers as `(init_fun, update_fun, get_params)`.

    opt_init, opt_update, get_params = optimizers.momentum(step_size=0.1, mass=0.9)
    opt_state = opt_init(params)                       # any pytree of arrays
    opt_state = opt_update(i, grads, opt_state)        # i: the step number (may be traced)
    params = get_params(opt_state)

Each optimizer is written for one array and lifted to pytrees by `optimizer`; the state is an
`OptimizerState` pytree, so it crosses `jit` (and `lax.scan`). Step sizes are numbers or
schedules (functions of the step number: `exponential_decay`, `piecewise_constant`, ...).
The formulas are those of JAX's library, so a program using it ports by changing its import.
JAX's `sm3` is not provided.
"""
from __future__ import annotations

from collections import namedtuple
import functools
import warnings

import numpy as np

from .. import numpy as tnp
from .. import tree as _tree

__all__ = [
    "OptimizerState", "optimizer", "sgd", "momentum", "nesterov", "adagrad", "rmsprop",
    "rmsprop_momentum", "adam", "adamax", "constant", "exponential_decay",
    "inverse_time_decay", "polynomial_decay", "piecewise_constant", "make_schedule",
    "l2_norm", "clip_grads", "JoinPoint", "unpack_optimizer_state",
    "pack_optimizer_state",
]

OptimizerState = namedtuple("OptimizerState", ["packed_state", "tree_def", "subtree_defs"])
OptimizerState.__doc__ = """The state of a lifted optimizer: per parameter leaf, the flat
leaves of its own state (`packed_state`), with the parameters' tree structure (`tree_def`) and
each leaf state's structure (`subtree_defs`). A pytree whose children are `packed_state`."""
with warnings.catch_warnings():
    # deliberately overriding the namedtuple default: the tree structures are static data
    warnings.simplefilter("ignore", UserWarning)
    _tree.register_pytree_node(
        OptimizerState,
        lambda s: ((s.packed_state,), (s.tree_def, s.subtree_defs)),
        lambda aux, children: OptimizerState(children[0], *aux))


def optimizer(opt_maker):
    """Decorator lifting an optimizer written for one array (`opt_maker(*args)` returns
    `(init(x0) -> state, update(i, g, state) -> state, get_params(state) -> x)`, a state
    being any pytree) to pytrees of parameters, as `jax.example_libraries.optimizers`."""
    @functools.wraps(opt_maker)
    def tree_opt_maker(*args, **kwargs):
        init, update, get_params = opt_maker(*args, **kwargs)

        @functools.wraps(init)
        def tree_init(x0_tree):
            x0_flat, tree = _tree.flatten(x0_tree)
            states = [init(x0) for x0 in x0_flat]
            flat = [_tree.flatten(s) for s in states]
            return OptimizerState([f[0] for f in flat], tree, tuple(f[1] for f in flat))

        @functools.wraps(update)
        def tree_update(i, grad_tree, opt_state):
            states_flat, tree, subtrees = opt_state
            grad_flat, tree2 = _tree.flatten(grad_tree)
            if tree2 != tree:
                raise TypeError(
                    "optimizer update: the gradient tree's structure differs from the "
                    f"parameters': {tree2} != {tree}")
            states = [_tree.unflatten(d, s) for d, s in zip(subtrees, states_flat)]
            new = [update(i, g, s) for g, s in zip(grad_flat, states)]
            flat = [_tree.flatten(s) for s in new]
            for k, ((_, d2), d) in enumerate(zip(flat, subtrees)):
                if d2 != d:
                    raise TypeError(
                        f"optimizer update: the state of parameter leaf {k} changed structure "
                        f"from {d} to {d2}")
            return OptimizerState([f[0] for f in flat], tree, subtrees)

        @functools.wraps(get_params)
        def tree_get_params(opt_state):
            states_flat, tree, subtrees = opt_state
            states = [_tree.unflatten(d, s) for d, s in zip(subtrees, states_flat)]
            return _tree.unflatten(tree, [get_params(s) for s in states])

        return tree_init, tree_update, tree_get_params
    return tree_opt_maker


# --- optimizers --------------------------------------------------------------------------------

@optimizer
def sgd(step_size):
    """Plain gradient descent: x <- x - step_size(i) * g."""
    step_size = make_schedule(step_size)
    return (lambda x0: x0,
            lambda i, g, x: x - _rate(step_size, i, g) * g,
            lambda x: x)


@optimizer
def momentum(step_size, mass):
    """Heavy-ball momentum: v <- mass * v + g; x <- x - step_size(i) * v."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, velocity = state
        velocity = mass * velocity + g
        return x - _rate(step_size, i, g) * velocity, velocity

    return init, update, lambda state: state[0]


@optimizer
def nesterov(step_size, mass):
    """Nesterov momentum: v <- mass * v + g; x <- x - step_size(i) * (mass * v + g)."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, velocity = state
        velocity = mass * velocity + g
        return x - _rate(step_size, i, g) * (mass * velocity + g), velocity

    return init, update, lambda state: state[0]


@optimizer
def adagrad(step_size, momentum=0.9):
    """Adagrad with momentum on the normalised gradient (JAX's variant)."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, g_sq, m = state
        g_sq = g_sq + tnp.square(g)
        g_sq_inv_sqrt = tnp.where(g_sq > 0, 1.0 / tnp.sqrt(tnp.where(g_sq > 0, g_sq, 1.0)),
                                  0.0)
        m = (1.0 - momentum) * (g * g_sq_inv_sqrt) + momentum * m
        return x - _rate(step_size, i, g) * m, g_sq, m

    return init, update, lambda state: state[0]


@optimizer
def rmsprop(step_size, gamma=0.9, eps=1e-8):
    """RMSProp: a running mean of squared gradients scales each step."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq_grad = state
        avg_sq_grad = avg_sq_grad * gamma + tnp.square(g) * (1.0 - gamma)
        return x - _rate(step_size, i, g) * g / tnp.sqrt(avg_sq_grad + eps), avg_sq_grad

    return init, update, lambda state: state[0]


@optimizer
def rmsprop_momentum(step_size, gamma=0.9, eps=1e-8, momentum=0.9):
    """RMSProp with momentum on the scaled step."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq_grad, mom = state
        avg_sq_grad = avg_sq_grad * gamma + tnp.square(g) * (1.0 - gamma)
        mom = momentum * mom + _rate(step_size, i, g) * g / tnp.sqrt(avg_sq_grad + eps)
        return x - mom, avg_sq_grad, mom

    return init, update, lambda state: state[0]


def _rate(step_size, i, like):
    """step_size(i) in the floating dtype of `like`: a schedule computed in NumPy's float64
    (a Python list of rates, `i / decay_steps`) must not turn float32 parameters into float64,
    which JAX's float32 defaults never do."""
    rate = step_size(i)
    dt = getattr(rate, "dtype", None)
    like_dt = getattr(like, "dtype", None)
    if dt is not None and like_dt is not None and dt != like_dt and dt.kind == "f" and \
            like_dt.kind == "f":
        rate = tnp.astype(rate, like_dt)
    return rate


def _bias_power(b, i, like):
    """b ** (i + 1) in the dtype of `like` (the step number may be a traced integer)."""
    return (tnp.asarray(b, like.dtype) ** (i + 1)).astype(like.dtype)


@optimizer
def adam(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with bias-corrected first and second moment estimates."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, m, v = state
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * tnp.square(g) + b2 * v
        mhat = m / (1 - _bias_power(b1, i, m))
        vhat = v / (1 - _bias_power(b2, i, m))
        return x - _rate(step_size, i, g) * mhat / (tnp.sqrt(vhat) + eps), m, v

    return init, update, lambda state: state[0]


@optimizer
def adamax(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """AdaMax: Adam with the infinity norm of past gradients."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, m, u = state
        m = (1 - b1) * g + b1 * m
        u = tnp.maximum(b2 * u, tnp.abs(g))
        x = x - (_rate(step_size, i, g) / (1 - _bias_power(b1, i, m))) * m / (u + eps)
        return x, m, u

    return init, update, lambda state: state[0]


# --- step-size schedules -------------------------------------------------------------------------

def constant(step_size):
    """The schedule returning `step_size` at every step."""
    return lambda i: step_size


def exponential_decay(step_size, decay_steps, decay_rate):
    """step_size * decay_rate ** (i / decay_steps)."""
    return lambda i: step_size * decay_rate ** (i / decay_steps)


def inverse_time_decay(step_size, decay_steps, decay_rate, staircase=False):
    """step_size / (1 + decay_rate * i / decay_steps), the ratio floored if `staircase`."""
    if staircase:
        return lambda i: step_size / (1 + decay_rate * tnp.floor(i / decay_steps))
    return lambda i: step_size / (1 + decay_rate * i / decay_steps)


def polynomial_decay(step_size, decay_steps, final_step_size, power=1.0):
    """From `step_size` to `final_step_size` over `decay_steps` steps along
    (1 - i / decay_steps) ** power, then constant."""
    def schedule(step_num):
        step_num = tnp.minimum(step_num, decay_steps)
        step_mult = (1 - step_num / decay_steps) ** power
        return step_mult * (step_size - final_step_size) + final_step_size
    return schedule


def piecewise_constant(boundaries, values):
    """values[k] for steps in (boundaries[k-1], boundaries[k]]: len(values) must be
    len(boundaries) + 1."""
    boundaries = np.asarray(boundaries)
    values = np.asarray(values)
    if not boundaries.ndim == values.ndim == 1:
        raise ValueError("piecewise_constant: boundaries and values must be sequences")
    if not values.shape[0] == boundaries.shape[0] + 1:
        raise ValueError(f"piecewise_constant: values ({values.shape[0]}) must have one more "
                         f"entry than boundaries ({boundaries.shape[0]})")
    return lambda i: tnp.take(values, tnp.sum(i > boundaries), axis=0)


def make_schedule(scalar_or_schedule):
    """A schedule from a number (constant) or a callable (returned as it is)."""
    if callable(scalar_or_schedule):
        return scalar_or_schedule
    if not isinstance(scalar_or_schedule, (str, bytes)) and np.ndim(scalar_or_schedule) == 0:
        return constant(scalar_or_schedule)
    raise TypeError(f"step size: a number or a schedule (a function of the step), got "
                    f"{type(scalar_or_schedule).__name__}")


# --- utilities -----------------------------------------------------------------------------------

def l2_norm(tree):
    """The Euclidean norm of all of `tree`'s leaves together."""
    return tnp.sqrt(sum(tnp.vdot(x, x) for x in _tree.leaves(tree)))


def clip_grads(grad_tree, max_norm):
    """`grad_tree` scaled so that its `l2_norm` is at most `max_norm`."""
    norm = l2_norm(grad_tree)
    return _tree.map(lambda g: tnp.where(norm < max_norm, g, g * (max_norm / norm)), grad_tree)


class JoinPoint:
    """Marks where the parameters' tree ends and a leaf's optimizer state begins in the tree
    `unpack_optimizer_state` returns (a leaf of the outer tree)."""

    def __init__(self, subtree):
        self.subtree = subtree

    def __iter__(self):
        yield self.subtree


def unpack_optimizer_state(opt_state):
    """The state as a pytree (the parameters' structure, each leaf a `JoinPoint` holding that
    parameter's state), e.g. to save it; `pack_optimizer_state` is the inverse."""
    states_flat, tree_def, subtree_defs = opt_state
    subtrees = [_tree.unflatten(d, s) for d, s in zip(subtree_defs, states_flat)]
    return _tree.unflatten(tree_def, [JoinPoint(s) for s in subtrees])


def pack_optimizer_state(marked_pytree):
    """The `OptimizerState` of a tree `unpack_optimizer_state` returned."""
    joins, tree_def = _tree.flatten(marked_pytree, is_leaf=lambda x: isinstance(x, JoinPoint))
    if not all(isinstance(j, JoinPoint) for j in joins):
        raise TypeError("pack_optimizer_state: every leaf must be a JoinPoint "
                        "(a tree from unpack_optimizer_state)")
    flat = [_tree.flatten(j.subtree) for j in joins]
    return OptimizerState([f[0] for f in flat], tree_def, tuple(f[1] for f in flat))
