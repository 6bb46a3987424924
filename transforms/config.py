"""`jax.config`: `config.update(name, value)`, `config.<name>`, `config.read(name)`.

JAX's flags are accepted under their JAX names; what each does here:

| flag | default | effect in this library |
|---|---|---|
| `jax_enable_x64` | False | default dtype of `transforms.nn.one_hot` and `nn.initializers` (float32 -> float64). `tnp` already follows NumPy 2 (float64 / int64 defaults) either way |
| `jax_disable_jit` | False | `jit` runs its function eagerly (as `with disable_jit():`) |
| `jax_platforms`, `jax_platform_name` | "cpu" | only the CPU (Numba) backend exists; other values are rejected |
| `jax_default_matmul_precision` | None | accepted; matmuls are always full precision |
| `jax_numpy_rank_promotion` | "allow" | accepted; implicit rank promotion is always allowed |
| `jax_numpy_dtype_promotion` | "standard" | "standard": NumPy 2's promotion (NEP 50); "strict": `tnp` functions and traced values raise `dtypes.TypePromotionError` where operands of different dtypes meet, except Python scalars (and values traced from them) that fit the other operand's dtype, as JAX's strict mode (operators between two plain NumPy arrays are NumPy's) |
| `jax_default_prng_impl` | "threefry2x32" | only threefry2x32 exists |
| `jax_debug_nans`, `jax_debug_infs` | False | `FloatingPointError` when an eager primitive makes a NaN (inf), naming it; a jitted call whose outputs hold one runs again de-optimized to name the primitive (`transforms.float_checks`) |
| `jax_log_compiles`, `jax_explain_cache_misses` | False | accepted; `jit(f).cache_misses` always records recompilations |
| `jax_traceback_filtering` | "auto" | accepted; errors always name the user's own source line |
| `jax_enable_checks` | False | every jaxpr a transformation builds (tracing, jvp, partial evaluation, transpose, batching, closure conversion, jit before compiling) is type-checked by `transforms.ir.check_jaxpr`; the test suite turns it on |
| `jax_check_tracer_leaks` | False | accepted; leaks are always detected |
| `jax_compilation_cache_dir` | None | sets `NUMBAX_CACHE_DIR` for executables compiled afterwards |

An unknown name raises `AttributeError`, as JAX does.
"""
from __future__ import annotations

import os

_FLAGS = {
    "jax_enable_x64": False,
    "jax_disable_jit": False,
    "jax_platforms": "cpu",
    "jax_platform_name": "cpu",
    "jax_default_matmul_precision": None,
    "jax_numpy_rank_promotion": "allow",
    "jax_numpy_dtype_promotion": "standard",
    "jax_default_prng_impl": "threefry2x32",
    "jax_debug_nans": False,
    "jax_debug_infs": False,
    "jax_log_compiles": False,
    "jax_explain_cache_misses": False,
    "jax_traceback_filtering": "auto",
    "jax_enable_checks": False,
    "jax_check_tracer_leaks": False,
    "jax_compilation_cache_dir": None,
    "jax_persistent_cache_min_compile_time_secs": 1.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
    "jax_threefry_partitionable": True,
}


class Config:
    """The flag registry (`transforms.config`); see the module docstring for each flag."""

    def __init__(self):
        object.__setattr__(self, "_values", dict(_FLAGS))
        # jax_debug_nans or jax_debug_infs: read on every eager primitive, so kept as one
        # plain attribute
        object.__setattr__(self, "debug_floats", False)
        # jax_numpy_dtype_promotion == "strict": read on every mixed-dtype tnp operation
        object.__setattr__(self, "strict_promotion", False)

    def update(self, name, value):
        """Set flag `name` (a JAX flag name) to `value`."""
        if name not in self._values:
            raise AttributeError(f"Unrecognized config option: {name}")
        if name in ("jax_platforms", "jax_platform_name") and value not in (None, "", "cpu"):
            raise ValueError(f"{name}={value!r}: only the 'cpu' platform exists here")
        if name == "jax_default_prng_impl" and value != "threefry2x32":
            raise ValueError(f"{name}={value!r}: only 'threefry2x32' exists here")
        if name == "jax_compilation_cache_dir" and value:
            os.environ["NUMBAX_CACHE_DIR"] = os.fspath(value)
        if name in ("jax_enable_x64", "jax_disable_jit"):
            value = bool(value)
        if name == "jax_numpy_dtype_promotion":
            if value not in ("standard", "strict"):
                raise ValueError(f"{name}={value!r}: expected 'standard' or 'strict'")
            object.__setattr__(self, "strict_promotion", value == "strict")
        self._values[name] = value
        if name in ("jax_debug_nans", "jax_debug_infs"):
            object.__setattr__(self, "debug_floats", bool(
                self._values["jax_debug_nans"] or self._values["jax_debug_infs"]))

    def read(self, name):
        """The current value of flag `name`."""
        if name not in self._values:
            raise AttributeError(f"Unrecognized config option: {name}")
        return self._values[name]

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"Unrecognized config option: {name}") from None

    def __setattr__(self, name, value):
        raise AttributeError("use config.update(name, value)")

    def values(self):
        """A copy of every flag's value."""
        return dict(self._values)


config = Config()
