# Cases for test_activations_losses.py::test_optax_named_loss_matches_optax and
# gen_optax_losses.py: (optax.losses name, positional args, keyword args).
import numpy as np

r = np.random.RandomState(0)
lg = r.randn(4, 5).astype(np.float32) * 3
pr = np.abs(r.randn(4, 5)).astype(np.float32); pr /= pr.sum(-1, keepdims=True)
tg = r.randn(4, 5).astype(np.float32)
lab = np.array([0, 4, 2, 1])
mask = np.array([[1,1,0,1,1],[1,1,1,1,1],[0,0,0,0,0],[1,0,1,0,1]], bool)
lg3 = r.randn(2, 3, 4).astype(np.float32)
cases = [
 ("squared_error", (lg, tg), {}), ("squared_error", (lg,), {}), ("l2_loss", (lg, tg), {}), ("l2_loss", (lg,), {}),
 ("huber_loss", (lg, tg), {}), ("huber_loss", (lg, tg), dict(delta=0.3)), ("huber_loss", (lg,), {}),
 ("log_cosh", (lg, tg), {}), ("log_cosh", (lg * 100,), {}),
 ("hinge_loss", (lg, np.sign(tg)), {}),
 ("cosine_similarity", (lg, tg), {}), ("cosine_similarity", (lg, tg), dict(epsilon=0.5, axis=0)),
 ("cosine_similarity", (lg, tg), dict(where=mask)), ("cosine_distance", (lg, tg), {}), ("cosine_distance", (lg3, lg3[::-1]), dict(axis=(1, 2))),
 ("kl_divergence", (np.log(pr), pr[::-1]), {}), ("kl_divergence", (np.log(pr), np.where(pr > 0.2, pr, 0)), dict(where=mask)),
 ("softmax_cross_entropy", (lg, pr), {}), ("softmax_cross_entropy", (lg, pr), dict(where=mask)), ("softmax_cross_entropy", (lg, pr), dict(axis=0)),
 ("softmax_cross_entropy", (lg3, np.abs(lg3)), dict(axis=(1, 2))), ("softmax_cross_entropy", (lg, pr), dict(axis=None)),
 ("softmax_cross_entropy_with_integer_labels", (lg, lab), {}), ("softmax_cross_entropy_with_integer_labels", (lg, np.array([0, 5, -1, -6])), {}),
 ("softmax_cross_entropy_with_integer_labels", (lg, lab), dict(where=mask)),
 ("softmax_cross_entropy_with_integer_labels", (lg.T, lab), dict(axis=0)),
 ("softmax_cross_entropy_with_integer_labels", (lg3, np.array([0, 11])), dict(axis=(1, 2))),
 ("safe_softmax_cross_entropy", (np.where(pr > 0.2, lg, -np.inf).astype(np.float32), np.where(pr > 0.2, pr, 0)), {}),
 ("safe_softmax_cross_entropy", (lg, pr), {}),
 ("poly_loss_cross_entropy", (lg, pr), {}), ("poly_loss_cross_entropy", (lg, pr), dict(epsilon=-0.5, where=mask)),
 ("sigmoid_binary_cross_entropy", (lg, (tg > 0).astype(np.float32)), {}), ("sigmoid_binary_cross_entropy", (lg * 30, pr), {}),
 ("sigmoid_binary_cross_entropy", (lg, (tg > 0)), {}),
]
