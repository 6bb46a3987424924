# Cases for test_random.py::test_bit_identical_to_jax and gen_jax_random.py:
# name -> (function name, positional args after the key, keyword args), float32 / JAX defaults.
import numpy as np

SEEDS = list(range(40)) + [12345, 2 ** 31 - 1, 987654321, 2 ** 32 - 1]

CASES = {
    "uniform": ("uniform", ((16,),), {}),
    "uniform_minmax": ("uniform", ((16,),), {"minval": -3.7, "maxval": 11.3}),
    "uniform_small": ("uniform", ((16,),), {"minval": 0.1, "maxval": 0.3}),
    "uniform_neg": ("uniform", ((16,),), {"minval": -1e-3, "maxval": -1e-6}),
    "normal": ("normal", ((16,),), {}),
    "truncated_normal": ("truncated_normal", (-1.5, 2.0, (16,)), {}),
    "truncated_normal_tail": ("truncated_normal", (5.0, 6.0, (16,)), {}),
    "truncated_normal_ntail": ("truncated_normal", (-9.0, -4.0, (16,)), {}),
    "gumbel": ("gumbel", ((16,),), {}),
    "exponential": ("exponential", ((16,),), {}),
    "bernoulli": ("bernoulli", (0.3, (16,)), {}),
    "randint": ("randint", ((16,), -1000, 77777), {}),
    "randint_int8": ("randint", ((16,), -5, 1000, np.int8), {}),
    "randint_uint16": ("randint", ((16,), 3, 70000, np.uint16), {}),
    "categorical": ("categorical", (np.log(np.array([.1, .2, .3, .15, .25], np.float32)),),
                    {"shape": (8,)}),
}
