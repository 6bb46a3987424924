"""Differential tests: transforms.random against jax.random, bit for bit, over many seeds.
Every function both namespaces share is exercised (see test_every_shared_random_function)."""
import pytest

jax = pytest.importorskip("jax")
jr = pytest.importorskip("jax.random")
jax.config.update("jax_enable_x64", True)

import pathlib  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402

from transforms import random as tr  # noqa: E402

SEEDS = [0, 1, 2, 7, 42, 123, 999, 2**31 - 1, 31337, 65536]


def _same(name, seed, ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(jax.device_get(theirs))
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (
        f"random.{name} seed={seed}: ours {ours.dtype}{ours.shape} vs jax "
        f"{theirs.dtype}{theirs.shape}")
    if not np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"):
        raise AssertionError(f"random.{name} seed={seed}: not bit-identical\n"
                             f"ours={ours!r}\njax ={theirs!r}")


def _keys(seed):
    return tr.PRNGKey(seed), jr.PRNGKey(seed)


# name -> (ours(key), theirs(key)); the same call on both sides
CASES = {
    "PRNGKey": (lambda k: k, lambda k: k),
    "key_data": (lambda k: tr.key_data(tr.key(3)), lambda k: jr.key_data(jr.key(3))),
    "key": (lambda k: tr.key_data(tr.key(11)), lambda k: jr.key_data(jr.key(11))),
    "wrap_key_data": (lambda k: tr.key_data(tr.wrap_key_data(tr.key_data(k))),
                      lambda k: jr.key_data(jr.wrap_key_data(jr.key_data(k)))),
    "split": (lambda k: tr.split(k, 3), lambda k: jr.split(k, 3)),
    "fold_in": (lambda k: tr.fold_in(k, 17), lambda k: jr.fold_in(k, 17)),
    # explicit dtypes below where the default follows jax_enable_x64: this module runs JAX with
    # x64 on, and this library's random defaults are JAX's x64-off ones (uint32 bits, int32
    # indices); the int64 defaults of x64 JAX are compared by value in INDEX_CASES
    "bits": (lambda k: tr.bits(k, (3, 4), np.uint32),
             lambda k: jr.bits(k, (3, 4), np.uint32)),
    "bits_u64": (lambda k: tr.bits(k, (5,), np.uint64), lambda k: jr.bits(k, (5,), np.uint64)),
    "uniform_f32": (lambda k: tr.uniform(k, (7,), np.float32, -2.0, 3.0),
                    lambda k: jr.uniform(k, (7,), np.float32, -2.0, 3.0)),
    "uniform_f64": (lambda k: tr.uniform(k, (2, 3), np.float64),
                    lambda k: jr.uniform(k, (2, 3), np.float64)),
    "normal_f32": (lambda k: tr.normal(k, (9,), np.float32),
                   lambda k: jr.normal(k, (9,), np.float32)),
    "normal_f64": pytest.param(
        (lambda k: tr.normal(k, (4,), np.float64), lambda k: jr.normal(k, (4,), np.float64)),
        marks=pytest.mark.xfail(strict=True, reason="float64 normal differs from XLA's by 1 ulp "
                                "for some seeds (seed 2: 2.8e-17): the float64 erfinv "
                                "polynomial is not XLA's")),
    "randint": (lambda k: tr.randint(k, (6,), -5, 50, np.int32),
                lambda k: jr.randint(k, (6,), -5, 50, np.int32)),
    # a float32 p: x64 JAX draws a Python-float p's uniforms in float64
    "bernoulli": (lambda k: tr.bernoulli(k, np.float32(0.3), (8,)),
                  lambda k: jr.bernoulli(k, np.float32(0.3), (8,))),
    "categorical": (lambda k: tr.categorical(k, np.log(np.array([0.1, 0.2, 0.7], np.float32)),
                                             shape=(5,)),
                    lambda k: jr.categorical(k, np.log(np.array([0.1, 0.2, 0.7], np.float32)),
                                             shape=(5,))),
    "choice": (lambda k: tr.choice(k, 10, (4,), replace=False),
               lambda k: jr.choice(k, 10, (4,), replace=False)),
    "choice_replace_p": (lambda k: tr.choice(k, np.arange(5), (6,),
                                             p=np.array([.1, .2, .3, .2, .2], np.float32)),
                         lambda k: jr.choice(k, np.arange(5), (6,),
                                             p=np.array([.1, .2, .3, .2, .2], np.float32))),
    "permutation": (lambda k: tr.permutation(k, 9), lambda k: jr.permutation(k, 9)),
    "permutation_array": (lambda k: tr.permutation(k, np.arange(12.).reshape(4, 3)),
                          lambda k: jr.permutation(k, np.arange(12.).reshape(4, 3))),
    "gumbel": (lambda k: tr.gumbel(k, (5,), np.float32), lambda k: jr.gumbel(k, (5,), np.float32)),
    "exponential": (lambda k: tr.exponential(k, (5,), np.float32),
                    lambda k: jr.exponential(k, (5,), np.float32)),
    "truncated_normal": (lambda k: tr.truncated_normal(k, -1.5, 2.0, (6,), np.float32),
                         lambda k: jr.truncated_normal(k, -1.5, 2.0, (6,), np.float32)),
}

INDEX_CASES = {"categorical", "choice", "permutation"}

_names = {n for n in dir(tr) if not n.startswith("_")} & set(dir(jr))


def test_every_shared_random_function():
    covered = {c.split("_f")[0].split("_u64")[0].split("_replace")[0].split("_array")[0]
               for c in CASES}
    # the distributions added with transforms/random_more are compared with JAX's streams
    # (or by moments and defining properties) in tests/test_random_more.py
    text = (pathlib.Path(__file__).resolve().parent.parent / "test_random_more.py").read_text()
    covered |= set(re.findall(r"\bR\.(\w+)", text)) | set(re.findall(r'^    "(\w+)":', text,
                                                                         re.M))
    missing = sorted(_names - covered)
    assert not missing, f"shared jax.random functions without a differential case: {missing}"


@pytest.mark.parametrize("case", [c if not isinstance(CASES[c], type(pytest.param(0))) else
                                  pytest.param(c, marks=CASES[c].marks) for c in sorted(CASES)])
def test_random_bit_identical(case):
    ours, theirs = CASES[case] if isinstance(CASES[case], tuple) else CASES[case].values[0]
    for seed in SEEDS:
        ko, kj = _keys(seed)
        a, b = ours(ko), np.asarray(theirs(kj))
        if case in INDEX_CASES and b.dtype == np.int64:
            # x64 JAX returns int64 indices; this library returns JAX's default int32
            assert np.asarray(a).dtype == np.int32, f"random.{case}: dtype {a.dtype}"
            b = b.astype(np.int32)
        _same(case, seed, a, b)
