"""`scipy.interpolate.RegularGridInterpolator` (`jax.scipy.interpolate`): linear and
nearest-neighbour interpolation on a rectilinear grid, built from `searchsorted` and
gathers, so it batches and compiles, and the linear method differentiates in the values
and the query points."""
from __future__ import annotations

import itertools

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["RegularGridInterpolator"]


class RegularGridInterpolator:
    """Interpolation on the grid `points` (a tuple of strictly ascending 1-D arrays, one per
    dimension of `values`), as `jax.scipy.interpolate.RegularGridInterpolator`: `method`
    'linear' or 'nearest'; `bounds_error` must be False (as JAX); queries outside the grid
    get `fill_value` (nan by default), or are extrapolated when it is None. Call with `xi`
    of shape (..., ndim) (or a tuple of coordinate arrays) for an array of shape (...,) +
    values.shape[ndim:]. Batches and compiles; the linear method differentiates in values
    and xi."""

    def __init__(self, points, values, method="linear", bounds_error=False,
                 fill_value=np.nan):
        if method not in ("linear", "nearest"):
            raise ValueError(f"RegularGridInterpolator: method must be 'linear' or "
                             f"'nearest', got {method!r}")
        if bounds_error:
            raise NotImplementedError("RegularGridInterpolator: bounds_error=True is not "
                                      "supported (as JAX)")
        values = tnp.asarray(values)
        if get_aval(values).dtype not in (np.float32, np.float64, np.complex64,
                                          np.complex128):
            values = tnp.astype(values, np.float64)
        if len(points) > get_aval(values).ndim:
            raise ValueError(f"RegularGridInterpolator: there are {len(points)} point "
                             f"arrays, but values has {get_aval(values).ndim} dimensions")
        grid = []
        for i, p in enumerate(points):
            p = tnp.asarray(p)
            if get_aval(p).ndim != 1:
                raise ValueError(f"RegularGridInterpolator: points[{i}] must be 1-D")
            if get_aval(p).shape[0] != get_aval(values).shape[i]:
                raise ValueError(f"RegularGridInterpolator: there are "
                                 f"{get_aval(p).shape[0]} points in dimension {i}, but "
                                 f"values has {get_aval(values).shape[i]}")
            grid.append(tnp.astype(p, get_aval(values).dtype)
                        if get_aval(values).dtype in (np.float32, np.float64) else p)
        self.grid = tuple(grid)
        self.values = values
        self.method = method
        self.bounds_error = bounds_error
        self.fill_value = fill_value

    def __call__(self, xi, method=None):
        """The interpolated values at `xi` (see the class docstring)."""
        method = self.method if method is None else method
        if method not in ("linear", "nearest"):
            raise ValueError(f"RegularGridInterpolator: method must be 'linear' or "
                             f"'nearest', got {method!r}")
        ndim = len(self.grid)
        if isinstance(xi, (tuple, list)):
            xi = tnp.stack(tnp.broadcast_arrays(*[tnp.asarray(v) for v in xi]), axis=-1)
        xi = tnp.asarray(xi)
        if get_aval(xi).shape[-1] != ndim:
            raise ValueError(f"RegularGridInterpolator: xi has {get_aval(xi).shape[-1]} "
                             f"coordinates per point, the grid has {ndim} dimensions")
        dt = get_aval(self.values).dtype
        real = dt if dt in (np.float32, np.float64) else np.float64
        xi = tnp.astype(xi, real)
        lead = get_aval(xi).shape[:-1]
        flat = tnp.reshape(xi, (-1, ndim))
        idx, frac, outside = [], [], None
        for d, g in enumerate(self.grid):
            x = flat[:, d]
            n = get_aval(g).shape[0]
            i = tnp.clip(tnp.searchsorted(g, x, side="right") - 1, 0, max(n - 2, 0))
            # take, not g[i]: g may be a NumPy constant and i a tracer
            lo = tnp.take(g, i)
            hi = tnp.take(g, tnp.minimum(i + 1, n - 1))
            width = hi - lo
            t = tnp.where(tnp.equal(width, 0), 0.0,
                          (x - lo) / tnp.where(tnp.equal(width, 0), 1.0, width))
            idx.append(i)
            frac.append(t)
            out_d = tnp.logical_or(tnp.less(x, g[0]), tnp.greater(x, g[n - 1]))
            outside = out_d if outside is None else tnp.logical_or(outside, out_d)
        extra = get_aval(self.values).shape[ndim:]
        flat_values = tnp.reshape(self.values, (-1,) + extra)
        strides = np.cumprod((1,) + get_aval(self.values).shape[:ndim][::-1])[:-1][::-1]

        def gather(sel):
            # a flat take, not values[sel]: values may be a NumPy constant, sel traced
            lin = None
            for s_, st in zip(sel, strides):
                term = s_ * int(st)
                lin = term if lin is None else lin + term
            return tnp.take(flat_values, lin, axis=0)

        if method == "nearest":
            near = tuple(tnp.where(tnp.less_equal(t, 0.5), i, i + 1) for i, t in zip(idx, frac))
            result = gather(near)
        else:
            result = None
            for corner in itertools.product((0, 1), repeat=ndim):
                w = None
                sel = []
                for c, i, t in zip(corner, idx, frac):
                    sel.append(i + c)
                    wc = t if c else 1 - t
                    w = wc if w is None else w * wc
                vals = gather(sel)
                w = tnp.reshape(w, (-1,) + (1,) * len(extra))
                term = vals * tnp.astype(w, dt)
                result = term if result is None else result + term
        if self.fill_value is not None:
            mask = tnp.reshape(outside, (-1,) + (1,) * len(extra))
            result = tnp.where(mask, tnp.asarray(self.fill_value, dt), result)
        return tnp.reshape(result, lead + extra)
