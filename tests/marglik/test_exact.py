"""The quadrature reference itself: converged, and equal to a brute-force Monte Carlo
average of the project's likelihood over prior draws."""

import numpy as np

from .exact import EXAMPLE, exact_log_ml, example_posterior, exponential_log_prior


def test_quadrature_converged():
    a = exact_log_ml(EXAMPLE, exponential_log_prior(10.0), nodes=100)
    b = exact_log_ml(EXAMPLE, exponential_log_prior(10.0), nodes=200)
    assert abs(a - b) < 1e-9


def test_quadrature_matches_prior_monte_carlo():
    post, exact = example_posterior()
    rng = np.random.default_rng(7)
    T = rng.exponential(0.1, size=(200_000, 3))
    ll = post.log_likelihood_batch(T)
    w = np.exp(ll - ll.max())
    est = np.log(w.mean()) + ll.max()
    se = w.std() / w.mean() / np.sqrt(len(w))
    assert abs(est - exact) < 5 * se + 1e-3
