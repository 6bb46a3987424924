"""Compilation backends. The only one is `transforms.backend.numba` (imported lazily by
`transforms.jit` and the `pjit` primitive, so eager-only programs never import Numba)."""
