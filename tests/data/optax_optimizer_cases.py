# Cases for test_optim.py::test_alias_matches_optax and gen_optax_optimizers.py.
import numpy as np
def tree0():
    return {"w": np.array([[0.5, -1.2, 0.3], [2.0, -0.7, 0.05]], np.float32),
            "b": np.array([0.1, -0.2], np.float32), "s": np.array(1.5, np.float32)}
def grads(i):
    r = np.random.RandomState(100 + i)
    return {"w": r.randn(2, 3).astype(np.float32), "b": r.randn(2).astype(np.float32),
            "s": np.asarray(r.randn(), np.float32)}
CASES = [
 ("sgd", (0.1,), {}), ("sgd", (0.1,), dict(momentum=0.9)), ("sgd", (0.1,), dict(momentum=0.9, nesterov=True)),
 ("adam", (0.01,), {}), ("adam", (0.01,), dict(b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-4)), ("adam", (0.01,), dict(nesterov=True)),
 ("adamw", (0.01,), {}), ("adamw", (0.01,), dict(weight_decay=0.1, nesterov=True)),
 ("nadam", (0.01,), {}), ("nadamw", (0.01,), dict(weight_decay=0.05)),
 ("amsgrad", (0.01,), {}), ("adamax", (0.01,), {}), ("adamaxw", (0.01,), dict(weight_decay=0.1)),
 ("adabelief", (0.01,), {}), ("yogi", (0.01,), {}), ("radam", (0.01,), {}), ("radam", (0.01,), dict(threshold=1.0)),
 ("rmsprop", (0.01,), {}), ("rmsprop", (0.01,), dict(centered=True, momentum=0.9, nesterov=True)),
 ("rmsprop", (0.01,), dict(eps_in_sqrt=False, bias_correction=True, initial_scale=0.1)),
 ("rmsprop", (0.01,), dict(centered=True, bias_correction=True)),
 ("adagrad", (0.1,), {}), ("lamb", (0.01,), {}), ("lamb", (0.01,), dict(weight_decay=0.1)),
 ("lars", (0.1,), {}), ("lars", (0.1,), dict(weight_decay=0.01, nesterov=True)),
 ("lion", (0.01,), {}), ("lion", (0.01,), dict(b1=0.5, weight_decay=0.1)),
]
