"""`jax.example_libraries`: the two small libraries JAX's examples and many tutorials import.

    from transforms.example_libraries import stax, optimizers

* `stax`: a layer is an `(init_fun, apply_fun)` pair; `init_fun(rng, input_shape)` returns
  `(output_shape, params)` and `apply_fun(params, inputs, rng=None, **kwargs)` the outputs.
  Combinators `serial`, `parallel`, `shape_dependent` build networks from layers.
* `optimizers`: an optimizer is an `(init_fun, update_fun, get_params)` triple over any pytree
  of parameters; its state is an `OptimizerState` pytree, so it passes through `jit`.

Both follow JAX's modules name for name (same signatures, initialisers, key use and state
layout), written over `transforms.numpy`, `lax`, `random`, `nn` and `tree`: code written for
JAX's versions runs here once its imports name this package.
"""
from . import optimizers, stax  # noqa: F401

__all__ = ["optimizers", "stax"]
