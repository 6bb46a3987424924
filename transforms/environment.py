"""JAX's device and environment queries, and its config-flag context managers.

There is one CPU "device" per process: `devices()` lists one `Device` per process of the
(MPI) world, `local_devices()` this process's one. Computations run on the host through
Numba, so placement, transfer and memory questions have trivial answers here; each name says
what it does.
"""
from __future__ import annotations

import contextlib
import platform as _platform  # the standard library module
import sys

from .config import config

__all__ = ["Device", "devices", "local_devices", "device_count", "local_device_count",
           "default_backend", "process_indices", "host_count", "host_id", "host_ids",
           "live_arrays", "print_environment_info", "ConfigState", "enable_x64", "debug_nans",
           "debug_infs", "log_compiles", "default_matmul_precision", "numpy_dtype_promotion",
           "numpy_rank_promotion", "check_tracer_leaks", "enable_checks", "explain_cache_misses",
           "transfer_guard", "transfer_guard_host_to_device", "transfer_guard_device_to_host",
           "transfer_guard_device_to_device", "default_device", "default_prng_impl",
           "threefry_partitionable", "checking_leaks", "effects_barrier",
           "make_array_from_callback", "make_array_from_single_device_arrays",
           "make_array_from_process_local_data"]


class Device:
    """A CPU device (one per process), as `jax.Device`: `id`, `platform` ("cpu"),
    `device_kind` ("cpu"), `process_index`; `str(d)` is "cpu:<id>" and `repr(d)`
    "CpuDevice(id=<id>)", as JAX's CPU devices print."""

    platform = "cpu"
    device_kind = "cpu"

    def __init__(self, id: int):
        self.id = int(id)
        self.process_index = int(id)     # one device per process

    def __repr__(self):
        return f"CpuDevice(id={self.id})"

    def __str__(self):
        return f"cpu:{self.id}"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("cpu", self.id))


def _check_backend(backend):
    if backend not in (None, "cpu") and not isinstance(backend, Device):
        raise RuntimeError(f"Unknown backend {backend!r}: only the 'cpu' backend exists here")


def _world():
    from .distributed import process_count, process_index
    return process_count(), process_index()


def devices(backend=None) -> list:
    """Every device of the world: one CPU `Device` per process (one without `mpiexec`)."""
    _check_backend(backend)
    n, _ = _world()
    return [Device(i) for i in range(n)]


def local_devices(process_index=None, backend=None) -> list:
    """The devices of this process (or of process `process_index`): one CPU `Device`."""
    _check_backend(backend)
    n, me = _world()
    p = me if process_index is None else int(process_index)
    if not 0 <= p < n:
        raise ValueError(f"local_devices: process_index {p} is not in [0, {n})")
    return [Device(p)]


def device_count(backend=None) -> int:
    """The number of devices of the world (= the number of processes)."""
    return len(devices(backend))


def local_device_count(backend=None) -> int:
    """The number of devices of this process: 1."""
    _check_backend(backend)
    return 1


def default_backend() -> str:
    """The platform computations run on: always "cpu"."""
    return "cpu"


def process_indices(backend=None) -> list:
    """The indices of every process of the world: `[0, ..., process_count() - 1]`."""
    _check_backend(backend)
    return list(range(_world()[0]))


def host_count(backend=None) -> int:
    """Old name of `process_count` (the number of processes)."""
    _check_backend(backend)
    return _world()[0]


def host_id(backend=None) -> int:
    """Old name of `process_index` (this process's index)."""
    _check_backend(backend)
    return _world()[1]


def host_ids(backend=None) -> list:
    """Old name of `process_indices`."""
    return process_indices(backend)


def live_arrays(platform=None) -> list:
    """JAX lists its live device buffers; results here are ordinary NumPy arrays owned by
    Python's garbage collector, so there are no backend buffers to list: always `[]`."""
    _check_backend(platform)
    return []


def print_environment_info(return_string: bool = False):
    """Print (or return, with `return_string=True`) the versions of this library, Python,
    NumPy and Numba, and the platform, as `jax.print_environment_info`."""
    import numpy as np
    from . import __version__
    try:
        import numba
        numba_version = numba.__version__
    except ImportError:           # pragma: no cover - numba is a dependency
        numba_version = "not installed"
    n, _ = _world()
    text = "\n".join([
        f"transforms: {__version__}",
        f"numpy:      {np.__version__}",
        f"numba:      {numba_version}",
        f"python:     {sys.version}",
        f"device info: cpu-{n}, {n} local devices" if n == 1 else
        f"device info: cpu, {n} processes with one device each",
        f"process_count: {n}",
        f"platform: {_platform.uname()}",
        ""])
    if return_string:
        return text
    print(text)


# ---------------------------------------------------------------------------------------------
# config flags as context managers: `with T.enable_x64(True): ...`, `T.enable_x64.value`
# ---------------------------------------------------------------------------------------------

class ConfigState:
    """A config flag usable as a context manager, as JAX's `jax.<flag>`: `with state(value):`
    sets flag `jax_<name>` for the block and restores it afterwards; `state.value` reads it.
    See `transforms.config` for what each flag does here."""

    def __init__(self, flag: str, doc: str):
        self.flag = flag
        self.__doc__ = f"Context manager for the `{flag}` config option: {doc}"

    @property
    def value(self):
        return config.read(self.flag)

    @contextlib.contextmanager
    def __call__(self, new_val=True):
        old = config.read(self.flag)
        config.update(self.flag, new_val)
        try:
            yield
        finally:
            config.update(self.flag, old)

    def __repr__(self):
        return f"ConfigState({self.flag}={self.value!r})"


enable_x64 = ConfigState(
    "jax_enable_x64", "64-bit defaults of `nn.one_hot` and `nn.initializers` (tnp follows "
    "NumPy 2's float64 / int64 defaults either way).")
debug_nans = ConfigState(
    "jax_debug_nans", "FloatingPointError where a primitive makes a NaN (see "
    "transforms.float_checks).")
debug_infs = ConfigState(
    "jax_debug_infs", "FloatingPointError where a primitive makes an inf (see "
    "transforms.float_checks).")
log_compiles = ConfigState(
    "jax_log_compiles", "accepted; `jit(f).cache_misses` always records recompilations and "
    "the `transforms.jit` logger logs them.")
explain_cache_misses = ConfigState(
    "jax_explain_cache_misses", "accepted; cache misses are always explained on the "
    "`transforms.jit` logger.")
default_matmul_precision = ConfigState(
    "jax_default_matmul_precision", "accepted; on the CPU matmuls and convolutions are always "
    "computed in full precision, so it has no effect.")
numpy_dtype_promotion = ConfigState(
    "jax_numpy_dtype_promotion", "'standard' (NumPy 2's promotion, NEP 50) or 'strict' (no "
    "implicit promotion between different dtypes; Python scalars that fit are allowed).")
numpy_rank_promotion = ConfigState(
    "jax_numpy_rank_promotion", "accepted; implicit rank promotion is always allowed.")
check_tracer_leaks = ConfigState(
    "jax_check_tracer_leaks", "accepted; leaked tracers are always detected.")
enable_checks = ConfigState(
    "jax_enable_checks", "type-check every jaxpr a transformation builds.")


@contextlib.contextmanager
def transfer_guard(new_val):
    """JAX guards host<->device transfers; there is one CPU device and no transfers here, so
    this context manager only checks `new_val` ("allow", "log", "disallow", "log_explicit",
    "disallow_explicit") and does nothing else."""
    allowed = ("allow", "log", "disallow", "log_explicit", "disallow_explicit")
    if new_val not in allowed:
        raise ValueError(f"transfer_guard: new_val must be one of {allowed}, got {new_val!r}")
    yield


transfer_guard_host_to_device = transfer_guard
transfer_guard_device_to_host = transfer_guard
transfer_guard_device_to_device = transfer_guard


@contextlib.contextmanager
def default_device(device):
    """Context manager choosing the device computations run on: the only one is this
    process's CPU device, so `device` must be None, "cpu" or a `Device`; no effect."""
    _check_backend(device)
    yield


default_prng_impl = ConfigState(
    "jax_default_prng_impl", "only 'threefry2x32' exists (other values are rejected).")
threefry_partitionable = ConfigState(
    "jax_threefry_partitionable", "accepted; keys are always split and drawn the way JAX's "
    "partitionable threefry mode (JAX's default) does.")
checking_leaks = check_tracer_leaks


def effects_barrier():
    """Wait for pending side effects (callbacks) to finish: they always run synchronously
    here, so there is nothing to wait for."""


def _one_device_sharding(sharding, what):
    if sharding is not None and isinstance(sharding, Device) and sharding.id != 0:
        raise ValueError(f"{what}: only device 0 exists in this process")


def make_array_from_callback(shape, sharding, data_callback, dtype=None):
    """The array of `shape` whose (only) shard is `data_callback(index)` with `index` the
    tuple of full slices (one device holds everything), as `jax.make_array_from_callback`."""
    import numpy as np
    _one_device_sharding(sharding, "make_array_from_callback")
    shape = tuple(shape)
    out = np.asarray(data_callback(tuple(slice(None) for _ in shape)), dtype=dtype)
    if out.shape != shape:
        raise ValueError(f"make_array_from_callback: the callback returned shape {out.shape}, "
                         f"expected {shape}")
    return out


def make_array_from_single_device_arrays(shape, sharding, arrays, *, dtype=None):
    """The global array from per-device arrays: with one device, its one array (checked to
    have `shape`)."""
    import numpy as np
    arrays = list(arrays)
    if len(arrays) != 1:
        raise ValueError(f"make_array_from_single_device_arrays: one device, so one array is "
                         f"expected, got {len(arrays)}")
    out = np.asarray(arrays[0], dtype=dtype)
    if out.shape != tuple(shape):
        raise ValueError(f"make_array_from_single_device_arrays: array of shape {out.shape}, "
                         f"expected {tuple(shape)}")
    return out


def make_array_from_process_local_data(sharding, local_data, global_shape=None):
    """The global array from this process's data: with one device per process and no
    cross-process sharding here, the local data itself."""
    import numpy as np
    out = np.asarray(local_data)
    if global_shape is not None and out.shape != tuple(global_shape):
        raise ValueError(f"make_array_from_process_local_data: local data of shape "
                         f"{out.shape} but global_shape {tuple(global_shape)} (data is not "
                         f"sharded across processes here)")
    return out
