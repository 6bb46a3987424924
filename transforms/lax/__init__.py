"""`transforms.lax`: the primitive operations, as in `jax.lax`.

Each family lives in its own module with its primitives' rules beside them. Control flow,
convolution and collectives are added by their own modules.
"""
from .elementwise import (  # noqa: F401
    ELEMENTWISE, abs, acos, add, asin, asinh, atan, atan2, atanh, bitwise_and, bitwise_not,
    bitwise_or, bitwise_xor, cbrt, ceil, convert_element_type, cos, cosh, div, eq, erf, exp, exp2,
    expm1, floor, ge, gt, integer_pow, is_finite, le, log, log1p, logaddexp, logaddexp2,
    logistic, lt, max, min, mul,
    ne, neg, pow, rem, round, round_even, rsqrt, select, select_n, shift_left, shift_right_arithmetic,
    shift_right_logical,
    sign, sin, sinh, sqrt, sub, tan, tanh, zeros_like_aval)
from .shape import (  # noqa: F401
    broadcast_in_dim, broadcast_to, concatenate, dynamic_index_in_dim, dynamic_slice,
    dynamic_slice_in_dim, dynamic_update_index_in_dim, dynamic_update_slice,
    dynamic_update_slice_in_dim,
    expand_dims, full, iota, pad, reshape, rev, slice, squeeze, transpose)
from .reductions import (  # noqa: F401
    argmax, argmin, cumprod, cumsum, reduce_and, reduce_max, reduce_min, reduce_or, reduce_prod,
    reduce_sum)
from .linalg import Precision, check_precision, dot, dot_general  # noqa: F401
from .indexing import (gather, scatter, scatter_add, scatter_max, scatter_min,  # noqa: F401
                       scatter_mul)
from .misc import stop_gradient  # noqa: F401
from .complex import complex, conj, imag, real  # noqa: F401
from .fft import FftType, fft  # noqa: F401
from .sorting import sort, sort_key_val, top_k  # noqa: F401
from .special import (  # noqa: F401
    bessel_i0e, bessel_i1e, digamma, erf_inv, erfc, lgamma, polygamma)
from .collectives import (UnboundAxisNameError, all_gather, axis_index, pmax, pmean,  # noqa: F401
                          pmin, ppermute, psum)

bitwise_and = bitwise_and
from .control_flow import cond, fori_loop, map, scan, switch, while_loop  # noqa: F401,E402
from .conv import (ConvDimensionNumbers, avg_pool, conv, conv_dimension_numbers,  # noqa: F401,E402
                   conv_general_dilated, conv_transpose, max_pool, padtype_to_pads,
                   reduce_window, sum_pool)
from .extras import (associative_scan, conv_general_shape_tuple,  # noqa: F401,E402
                     conv_with_general_padding, dynamic_index_in_dim, dynamic_slice_in_dim,
                     dynamic_update_index_in_dim, dynamic_update_slice_in_dim, index_in_dim,
                     reduce_window_shape_tuple, slice_in_dim)

from .more import (acosh, approx_max_k, approx_min_k, batch_matmul, broadcast,  # noqa: F401,E402
                   broadcast_shapes, broadcast_to_rank, broadcasted_iota, clamp, clz, collapse,
                   cumlogsumexp, cummax, cummin, dtype, empty, full_like, index_take, mulhi,
                   nextafter, optimization_barrier, population_count, random_gamma_grad,
                   reciprocal, reduce,
                   reduce_precision, reduce_xor, scatter_apply, scatter_sub, split, square,
                   stack, tile, unstack)
from .conv_more import (conv_general_dilated_patches, conv_shape_tuple,  # noqa: F401,E402
                        conv_transpose_shape_tuple)
from .special_more import betainc, igamma, igamma_grad_a, igammac, zeta  # noqa: F401,E402
from .misc_more import (GatherScatterMode, RoundingMethod, after_all,  # noqa: F401,E402
                        bitcast_convert_type, broadcast_like, composite,
                        conv_general_permutations, create_token, pbroadcast, pcast,
                        platform_dependent, ragged_dot, shape_as_value,
                        with_sharding_constraint)
from .solvers import custom_linear_solve, custom_root  # noqa: F401,E402
from .collectives_more import (all_to_all, axis_size, pshuffle, psum_scatter,  # noqa: F401,E402
                               pswapaxes)

from . import _docs as _docs_table  # noqa: E402

_docs_table.install(globals())     # docstrings of the factory-made primitives' functions
del _docs_table

import types as _types_all  # noqa: E402

# the public names (pdoc documents re-exported names only when they are listed here)
__all__ = sorted(_n for _n, _v in globals().items()
                 if not _n.startswith("_") and not isinstance(_v, _types_all.ModuleType))
del _types_all
