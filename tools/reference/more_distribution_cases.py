"""The draws compared with JAX: name -> (seed, draw(random_module, key)). Shared by the
test and by record_more_distributions.py, which runs them under JAX."""

CASES = {
    "pareto": (0, lambda r, k: r.pareto(k, 3.0, (6,))),
    "pareto_array_b": (1, lambda r, k: r.pareto(k, r.uniform(k, (2, 3)) + 1.0)),
    "maxwell": (2, lambda r, k: r.maxwell(k, (5,))),
    "double_sided_maxwell": (3, lambda r, k: r.double_sided_maxwell(k, 1.0, 2.0, (5,))),
    "weibull_min": (4, lambda r, k: r.weibull_min(k, 2.0, 1.5, (6,))),
    "rayleigh": (5, lambda r, k: r.rayleigh(k, 0.5, (6,))),
    "wald": (6, lambda r, k: r.wald(k, 1.5, (6,))),
    "geometric": (7, lambda r, k: r.geometric(k, 0.3, (8,))),
    "triangular": (8, lambda r, k: r.triangular(k, -1.0, 0.2, 2.0, (6,))),
    "orthogonal": (9, lambda r, k: r.orthogonal(k, 4)),
    "orthogonal_wide": (10, lambda r, k: r.orthogonal(k, 2, (3,), m=4)),
}
