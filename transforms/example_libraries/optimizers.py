"""`jax.example_libraries.optimizers`: first-order optimizers as `(init_fun, update_fun,
get_params)` triples over pytrees of parameters.

    opt_init, opt_update, get_params = optimizers.adam(1e-3)
    opt_state = opt_init(params)
    for i in range(steps):
        grads = T.grad(loss)(get_params(opt_state), batch)
        opt_state = opt_update(i, grads, opt_state)

* `init_fun(params) -> opt_state`; `update_fun(step, grads, opt_state) -> opt_state` (`grads`
  has the parameters' tree structure; `step` is the iteration index the step size schedule
  reads); `get_params(opt_state) -> params`, so `get_params(init_fun(p))` is `p`.
* The state is an `OptimizerState(packed_state, tree_def, subtree_defs)`: per parameter leaf,
  the flat leaves of that leaf's own state (e.g. `(x, m, v)` for Adam) and their structure. It
  is a pytree whose only children are the arrays, so `update_fun` compiles with `jit` and the
  state passes through `vmap`, `tree.map` and checkpoints; `unpack_optimizer_state` /
  `pack_optimizer_state` turn it into a plain nested tree and back (for serialisation).
* `optimizer` turns a triple written for one array into one over pytrees; every optimizer
  here is built that way. A step size is a number or a schedule `step -> step size`
  (`constant`, `exponential_decay`, `inverse_time_decay`, `polynomial_decay`,
  `piecewise_constant`, or any function of the step).

The formulas, defaults and state layouts are JAX's, so trajectories agree with JAX's to
rounding. One dtype rule differs on purpose: a schedule's rate that is a float array of
another precision (a `piecewise_constant` of Python floats is float64, NumPy's default) is cast
to the gradient's float dtype, so float32 parameters stay float32 as under JAX's 32-bit
defaults (JAX with `jax_enable_x64` would promote them).
"""
from __future__ import annotations

import functools
from collections import namedtuple
from typing import Any, Callable, NamedTuple

import numpy as np

import transforms.numpy as tnp
from transforms import tree as _tree
from transforms.tree_util import register_pytree_node

__all__ = [
    "OptimizerState", "Optimizer", "optimizer", "JoinPoint",
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_momentum", "adam", "adamax",
    "sm3",
    "constant", "exponential_decay", "inverse_time_decay", "polynomial_decay",
    "piecewise_constant", "make_schedule",
    "l2_norm", "clip_grads", "pack_optimizer_state", "unpack_optimizer_state",
    "Array", "Params", "State", "Updates", "InitFn", "Step", "UpdateFn", "ParamsFn", "Schedule",
]


class OptimizerState(namedtuple("OptimizerState", ["packed_state", "tree_def", "subtree_defs"])):
    """The state of an optimizer built by `optimizer`: a pytree whose leaves are the arrays.

    `packed_state[k]` is the list of leaves of parameter leaf k's own state (e.g. `[x, m, v]`),
    `tree_def` the parameters' tree structure, `subtree_defs[k]` the structure of leaf k's
    state. Only `packed_state` is a child; the two structures are static (part of the tree's
    structure, so two states compare as the same tree when they hold the same layout)."""
    __slots__ = ()


# (the tree backend's warning that namedtuples are containers already is silenced by
# register_pytree_node: overriding that is the point -- the two structures are static data)
register_pytree_node(
    OptimizerState,
    lambda s: ((s.packed_state,), (s.tree_def, s.subtree_defs)),
    lambda aux, children: OptimizerState(children[0], aux[0], aux[1]))


# Type names JAX's module exports (annotations only).
Array = Any
Params = Any      # a pytree of arrays
State = Any       # one array's optimizer state (a pytree)
Updates = Params  # gradients, with the parameters' structure
InitFn = Callable[[Params], OptimizerState]
Step = int
UpdateFn = Callable[[Step, Updates, OptimizerState], OptimizerState]
ParamsFn = Callable[[OptimizerState], Params]
Schedule = Callable[[Step], float]


class Optimizer(NamedTuple):
    """The `(init_fn, update_fn, params_fn)` triple the optimizers return (unpack it as
    `opt_init, opt_update, get_params = ...`)."""
    init_fn: InitFn
    update_fn: UpdateFn
    params_fn: ParamsFn


def _flatten_each(trees):
    """`(tuple of leaf lists, tuple of treedefs)` of a sequence of trees."""
    pairs = [_tree.flatten(t) for t in trees]
    return tuple(leaves for leaves, _ in pairs), tuple(spec for _, spec in pairs)


def _check_state(opt_state, where):
    if not isinstance(opt_state, OptimizerState):
        raise TypeError(f"{where}: opt_state must be the OptimizerState an optimizer's "
                        f"init_fun returned, got {type(opt_state).__name__}")
    return opt_state


def optimizer(opt_maker):
    """Decorator: lift an optimizer written for single arrays to one over pytrees.

    `opt_maker(*args, **kwargs)` returns `(init, update, get_params)` acting on one array:
    `init(x0) -> state` (any pytree of arrays), `update(step, g, state) -> state` of the same
    structure, `get_params(state) -> x`. The decorated maker returns an `Optimizer` whose
    functions apply those leaf by leaf over a parameter pytree, keeping the states in an
    `OptimizerState`. `update_fn` raises `TypeError` when the gradients' tree differs from the
    parameters', or when `update` changes the structure of a leaf's state."""
    @functools.wraps(opt_maker)
    def tree_opt_maker(*args, **kwargs):
        init, update, get_params = opt_maker(*args, **kwargs)

        @functools.wraps(init)
        def tree_init(x0_tree):
            x0_flat, tree_def = _tree.flatten(x0_tree)
            states_flat, subtree_defs = _flatten_each([init(x0) for x0 in x0_flat])
            return OptimizerState(states_flat, tree_def, subtree_defs)

        @functools.wraps(update)
        def tree_update(i, grad_tree, opt_state):
            states_flat, tree_def, subtree_defs = _check_state(opt_state, "update_fun")
            grad_flat, grad_def = _tree.flatten(grad_tree)
            if grad_def != tree_def:
                raise TypeError(f"optimizer update_fun: the gradient tree's structure "
                                f"{grad_def} differs from the parameters' {tree_def} (the "
                                f"structure the state was initialised with)")
            states = [_tree.unflatten(d, s) for d, s in zip(subtree_defs, states_flat)]
            new_states = [update(i, g, s) for g, s in zip(grad_flat, states)]
            new_flat, new_defs = _flatten_each(new_states)
            for k, (before, after) in enumerate(zip(subtree_defs, new_defs)):
                if before != after:
                    raise TypeError(f"optimizer update_fun: the update of parameter leaf {k} "
                                    f"changed its state's structure from {before} to {after}")
            return OptimizerState(new_flat, tree_def, subtree_defs)

        @functools.wraps(get_params)
        def tree_get_params(opt_state):
            states_flat, tree_def, subtree_defs = _check_state(opt_state, "get_params")
            params = [get_params(_tree.unflatten(d, s))
                      for d, s in zip(subtree_defs, states_flat)]
            return _tree.unflatten(tree_def, params)

        return Optimizer(tree_init, tree_update, tree_get_params)

    return tree_opt_maker


# --------------------------------------------------------------------------------------------
# Optimizers (written for one array; `optimizer` lifts them to pytrees)

def _params_of(state):
    return state[0]


def _rate(step_size, i, like):
    """`step_size(i)`, cast to `like`'s float dtype when it is a float array of another one: a
    float64 schedule (Python floats in a NumPy array) must not turn float32 parameters into
    float64, which JAX's 32-bit defaults never do. Python numbers are weak and left alone."""
    rate = step_size(i)
    rate_dtype, like_dtype = getattr(rate, "dtype", None), getattr(like, "dtype", None)
    if (rate_dtype is not None and like_dtype is not None and rate_dtype != like_dtype
            and rate_dtype.kind == "f" and like_dtype.kind == "f"):
        rate = tnp.astype(rate, like_dtype)
    return rate


def _inv_sqrt_or_zero(acc):
    """`1 / sqrt(acc)` where `acc > 0`, else 0 (acc >= 0); the inner `where` keeps `1/0` out of
    the computation (no warning eagerly, no inf/NaN in derivatives)."""
    positive = acc > 0
    return tnp.where(positive, 1.0 / tnp.sqrt(tnp.where(positive, acc, 1.0)), 0.0)


@optimizer
def sgd(step_size):
    """Stochastic gradient descent: `x <- x - step_size(i) * g`. The state is `x` itself.

    `step_size`: a positive number or a schedule `i -> step size`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0

    def update(i, g, x):
        return x - _rate(step_size, i, g) * g

    def get_params(x):
        return x

    return Optimizer(init, update, get_params)


@optimizer
def momentum(step_size: Schedule, mass: float):
    """SGD with (heavy-ball) momentum: `v <- mass * v + g; x <- x - step_size(i) * v`, with
    `v` starting at zero. State per array: `(x, v)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, v = state
        v = mass * v + g
        return x - _rate(step_size, i, g) * v, v

    return init, update, _params_of


@optimizer
def nesterov(step_size: Schedule, mass: float):
    """SGD with Nesterov momentum: `v <- mass * v + g; x <- x - step_size(i) * (mass * v + g)`.
    State per array: `(x, v)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, v = state
        v = mass * v + g
        return x - _rate(step_size, i, g) * (mass * v + g), v

    return init, update, _params_of


@optimizer
def adagrad(step_size, momentum=0.9):
    """Adagrad (Duchi et al., 2011) with momentum: `G <- G + g^2`, `m <- (1 - momentum) *
    g / sqrt(G) + momentum * m` (0 where `G` is 0), `x <- x - step_size(i) * m`. State per
    array: `(x, G, m)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, g_sq, m = state
        g_sq = g_sq + tnp.square(g)
        inv_root = _inv_sqrt_or_zero(g_sq)
        m = (1.0 - momentum) * (g * inv_root) + momentum * m
        return x - _rate(step_size, i, g) * m, g_sq, m

    return init, update, _params_of


@optimizer
def rmsprop(step_size, gamma=0.9, eps=1e-8):
    """RMSProp: `a <- gamma * a + (1 - gamma) * g^2; x <- x - step_size(i) * g / sqrt(a + eps)`.
    State per array: `(x, a)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq = state
        avg_sq = avg_sq * gamma + tnp.square(g) * (1.0 - gamma)
        return x - _rate(step_size, i, g) * g / tnp.sqrt(avg_sq + eps), avg_sq

    return init, update, _params_of


@optimizer
def rmsprop_momentum(step_size, gamma=0.9, eps=1e-8, momentum=0.9):
    """RMSProp with momentum: `a` as `rmsprop`, then `mom <- momentum * mom + step_size(i) * g /
    sqrt(a + eps); x <- x - mom`. State per array: `(x, a, mom)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, avg_sq, mom = state
        avg_sq = avg_sq * gamma + tnp.square(g) * (1.0 - gamma)
        mom = momentum * mom + _rate(step_size, i, g) * g / tnp.sqrt(avg_sq + eps)
        return x - mom, avg_sq, mom

    return init, update, _params_of


def _bias_power(beta, i, dtype):
    """`beta ** (i + 1)` in the moments' dtype (`i` the 0-based step)."""
    # the cast: a NumPy integer step (strong int64) would promote float32 to float64
    return (tnp.asarray(beta, dtype) ** (i + 1)).astype(dtype)


@optimizer
def adam(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba): moments `m <- (1 - b1) g + b1 m`, `v <- (1 - b2) g^2 + b2 v`,
    bias-corrected by `1 - b^(i+1)`, and `x <- x - step_size(i) * mhat / (sqrt(vhat) + eps)`.
    State per array: `(x, m, v)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, m, v = state
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * tnp.square(g) + b2 * v
        dtype = tnp.result_type(m)
        m_hat = m / (1 - _bias_power(b1, i, dtype))
        v_hat = v / (1 - _bias_power(b2, i, dtype))
        return x - _rate(step_size, i, g) * m_hat / (tnp.sqrt(v_hat) + eps), m, v

    return init, update, _params_of


@optimizer
def adamax(step_size, b1=0.9, b2=0.999, eps=1e-8):
    """AdaMax (Adam with the infinity norm): `m` as Adam, `u <- max(b2 u, |g|)`, and
    `x <- x - step_size(i) / (1 - b1^(i+1)) * m / (u + eps)`. State per array: `(x, m, u)`."""
    step_size = make_schedule(step_size)

    def init(x0):
        return x0, tnp.zeros_like(x0), tnp.zeros_like(x0)

    def update(i, g, state):
        x, m, u = state
        m = (1 - b1) * g + b1 * m
        u = tnp.maximum(b2 * u, tnp.abs(g))
        lr = _rate(step_size, i, g) / (1 - _bias_power(b1, i, tnp.result_type(m)))
        return x - lr * m / (u + eps), m, u

    return init, update, _params_of


@optimizer
def sm3(step_size, momentum=0.9):
    """SM3 (Anil et al., 2019): per array of rank r, r accumulators, one per axis, of that
    axis's length; each step's accumulator is their broadcast minimum plus `g^2`, its maxima
    along the other axes become the new accumulators, and
    `m <- (1 - momentum) * g / sqrt(acc) + momentum * m` (0 where `acc` is 0),
    `x <- x - step_size(i) * m`. Scalars are handled as shape (1,). State per array:
    `(x, m, accumulators, original shape)`."""
    step_size = make_schedule(step_size)

    def along(ndim, v, axis):
        """`v` (1-D) shaped to broadcast along `axis` of an `ndim`-dimensional array."""
        shape = [1] * ndim
        shape[axis] = -1
        return tnp.reshape(v, shape)

    def init(x0):
        shape = tnp.shape(x0)
        x0 = tnp.atleast_1d(x0)
        dtype = tnp.result_type(x0)
        accumulators = [tnp.zeros(n, dtype=dtype) for n in tnp.shape(x0)]
        return x0, tnp.zeros_like(x0), accumulators, shape

    def update(i, g, state):
        x, m, accumulators, shape = state
        ndim = tnp.ndim(x)   # x is at least 1-D; a scalar's g broadcasts
        acc = functools.reduce(tnp.minimum,
                               [along(ndim, v, k) for k, v in enumerate(accumulators)])
        acc = acc + tnp.square(g)
        inv_root = _inv_sqrt_or_zero(acc)
        m = (1.0 - momentum) * (g * inv_root) + momentum * m
        x = x - _rate(step_size, i, g) * m
        accumulators = [tnp.max(acc, axis=tuple(a for a in range(ndim) if a != k))
                        for k in range(ndim)]
        return x, m, accumulators, shape

    def get_params(state):
        x, _, _, shape = state
        return tnp.reshape(x, shape)

    return init, update, get_params


# --------------------------------------------------------------------------------------------
# Step size schedules: functions of the step index (Python int, or traced under jit)

def constant(step_size) -> Schedule:
    """The schedule returning `step_size` at every step."""
    def schedule(i):
        return step_size
    return schedule


def exponential_decay(step_size, decay_steps, decay_rate):
    """`step_size * decay_rate ** (i / decay_steps)` (smooth, not staircase)."""
    def schedule(i):
        return step_size * decay_rate ** (i / decay_steps)
    return schedule


def inverse_time_decay(step_size, decay_steps, decay_rate, staircase=False):
    """`step_size / (1 + decay_rate * i / decay_steps)`; with `staircase=True` the quotient is
    floored, so the step size changes every `decay_steps` steps."""
    if staircase:
        def schedule(i):
            return step_size / (1 + decay_rate * tnp.floor(i / decay_steps))
    else:
        def schedule(i):
            return step_size / (1 + decay_rate * i / decay_steps)
    return schedule


def polynomial_decay(step_size, decay_steps, final_step_size, power=1.0):
    """From `step_size` to `final_step_size` over `decay_steps` steps along
    `(1 - i / decay_steps) ** power`, then `final_step_size`."""
    def schedule(step_num):
        step_num = tnp.minimum(step_num, decay_steps)
        mult = (1 - step_num / decay_steps) ** power
        return mult * (step_size - final_step_size) + final_step_size
    return schedule


def piecewise_constant(boundaries: Any, values: Any):
    """`values[k]` for steps `i` with exactly k boundaries below it (`i > boundaries[k-1]`):
    `values[0]` up to and including `boundaries[0]`, ..., `values[-1]` after the last one.
    `values` must be one longer than `boundaries`; both are 1-D."""
    boundaries = tnp.array(boundaries)
    values = tnp.array(values)
    if not (boundaries.ndim == 1 and values.ndim == 1):
        raise ValueError(f"piecewise_constant: boundaries and values must be sequences (1-D), "
                         f"got shapes {boundaries.shape} and {values.shape}")
    if boundaries.shape[0] != values.shape[0] - 1:
        raise ValueError(f"piecewise_constant: values must be one longer than boundaries, got "
                         f"{values.shape[0]} values for {boundaries.shape[0]} boundaries")

    def schedule(i):
        # `take`, not `values[...]`: `values` is a NumPy array, which a traced index (the step
        # under jit) cannot index
        return tnp.take(values, tnp.sum(i > boundaries))
    return schedule


def make_schedule(scalar_or_schedule: float | Schedule) -> Schedule:
    """A schedule from a step size: callables are returned as they are, a scalar becomes
    `constant(scalar)`; anything else raises `TypeError`."""
    if callable(scalar_or_schedule):
        return scalar_or_schedule
    if not isinstance(scalar_or_schedule, (str, bytes)) and np.ndim(scalar_or_schedule) == 0:
        return constant(scalar_or_schedule)
    raise TypeError(f"make_schedule: a step size must be a scalar or a callable schedule, got "
                    f"{type(scalar_or_schedule).__name__} of shape "
                    f"{np.shape(scalar_or_schedule)}")


# --------------------------------------------------------------------------------------------
# Utilities

def l2_norm(tree):
    """The l2 norm of all of a pytree's leaves together: `sqrt(sum of vdot(x, x))`."""
    return tnp.sqrt(sum(tnp.vdot(x, x) for x in _tree.leaves(tree)))


def clip_grads(grad_tree, max_norm):
    """Scale a gradient pytree by `max_norm / l2_norm(grad_tree)` when its norm is at least
    `max_norm`; otherwise return it unchanged (values, structure)."""
    norm = l2_norm(grad_tree)

    def clip(g):
        return tnp.where(norm < max_norm, g, g * (max_norm / norm))

    return _tree.map(clip, grad_tree)


# --------------------------------------------------------------------------------------------
# Serialisation: OptimizerState <-> one nested pytree

class JoinPoint:
    """Marks where a parameter leaf's own state tree hangs in `unpack_optimizer_state`'s output.

    It is a leaf of the outer (parameter) tree holding the inner tree as `.subtree`; it
    iterates as that one subtree, as a container of arrays would."""

    def __init__(self, subtree):
        self.subtree = subtree

    def __iter__(self):
        yield self.subtree

    def __repr__(self):
        return f"JoinPoint({self.subtree!r})"


def unpack_optimizer_state(opt_state):
    """An `OptimizerState` as the parameters' pytree with a `JoinPoint` at each leaf holding
    that leaf's state tree (e.g. `{'w': JoinPoint((x, m, v))}`): plain containers, for
    serialising. `pack_optimizer_state` inverts it."""
    states_flat, tree_def, subtree_defs = _check_state(opt_state, "unpack_optimizer_state")
    marks = [JoinPoint(_tree.unflatten(d, s)) for d, s in zip(subtree_defs, states_flat)]
    return _tree.unflatten(tree_def, marks)


def pack_optimizer_state(marked_pytree):
    """The `OptimizerState` of a tree from `unpack_optimizer_state` (every leaf a `JoinPoint`);
    the round trip gives back an equal state."""
    marks, tree_def = _tree.flatten(marked_pytree,
                                    is_leaf=lambda x: isinstance(x, JoinPoint))
    for k, mark in enumerate(marks):
        if not isinstance(mark, JoinPoint):
            raise TypeError(f"pack_optimizer_state: leaf {k} of the tree is a "
                            f"{type(mark).__name__}, not a JoinPoint (pass the output of "
                            f"unpack_optimizer_state)")
    states_flat, subtree_defs = _flatten_each([mark.subtree for mark in marks])
    return OptimizerState(states_flat, tree_def, subtree_defs)
