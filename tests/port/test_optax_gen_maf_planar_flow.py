"""Port: normalising flows other than RealNVP: a masked autoregressive flow (MAF,
Papamakarios et al., 2017) with MADE masks, and planar flows (Rezende & Mohamed, 2015)
for variational inference, in the style of hand-written JAX flow tutorials.

- MAF: masked dense layers (degree masks built with numpy, applied as `w * mask`), a
  shift and log-scale per dimension, and a reversing permutation between layers; the
  log-determinant is the sum of log-scales (triangular Jacobian). It is checked against
  `jnp.linalg.slogdet` of the `jax.jacfwd` Jacobian. Trained by maximum likelihood on a
  banana-shaped 3-d sample with `optax.adam` under `jit`; sampling inverts the flow one
  dimension at a time with `lax.fori_loop`, and must invert the forward pass.
- Planar flows `z + u tanh(w.z + b)` with the invertibility fix `u_hat`, stacked with
  `lax.scan` over layer parameters, fitted by reverse KL to an unnormalised 2-d target
  (`logsumexp` of two Gaussians); `log|det| = log|1 + u_hat.psi|` against slogdet.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    d, hidden, n_layers = 3, 16, 2

    # ---------------------------------------------------------------- MADE masks
    in_deg = np.arange(1, d + 1)
    hid_deg = (np.arange(hidden) % (d - 1)) + 1
    mask_in = (hid_deg[None, :] >= in_deg[:, None]).astype(np.float32)      # (d, hidden)
    mask_out = (in_deg[None, :] > hid_deg[:, None]).astype(np.float32)      # (hidden, d)

    def init_layer(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {"w1": 0.3 * jax.random.normal(k1, (d, hidden)), "b1": jnp.zeros(hidden),
                "w_mu": 0.1 * jax.random.normal(k2, (hidden, d)), "b_mu": jnp.zeros(d),
                "w_s": 0.1 * jax.random.normal(k3, (hidden, d)), "b_s": jnp.zeros(d)}

    def made(layer, x):
        h = jax.nn.relu(x @ (layer["w1"] * mask_in) + layer["b1"])
        mu = h @ (layer["w_mu"] * mask_out) + layer["b_mu"]
        log_s = jnp.tanh(h @ (layer["w_s"] * mask_out) + layer["b_s"])
        return mu, log_s

    def maf_forward(layers, x):
        """data -> noise: u = (x - mu(x_<i)) * exp(-log_s); returns u and log|det du/dx|."""
        log_det = jnp.zeros(x.shape[:-1])
        for layer in layers:
            mu, log_s = made(layer, x)
            x = (x - mu) * jnp.exp(-log_s)
            log_det = log_det - jnp.sum(log_s, -1)
            x = x[..., ::-1]
        return x, log_det

    def maf_inverse(layers, u):
        for layer in reversed(layers):
            u = u[..., ::-1]

            def body(i, x, layer=layer, u=u):
                mu, log_s = made(layer, x)
                return x.at[..., i].set(u[..., i] * jnp.exp(log_s[..., i]) + mu[..., i])
            u = lax.fori_loop(0, d, body, jnp.zeros_like(u))
        return u

    def maf_log_prob(layers, x):
        u, log_det = maf_forward(layers, x)
        return jnp.sum(jax.scipy.stats.norm.logpdf(u), -1) + log_det

    rs = np.random.RandomState(0)
    a = rs.normal(size=(256,)).astype(np.float32)
    data = np.stack([a, 0.5 * a ** 2 + 0.3 * rs.normal(size=256),
                     0.4 * rs.normal(size=256) - 0.5 * a], -1).astype(np.float32)
    data = jnp.asarray(data)

    layers = [init_layer(k) for k in jax.random.split(jax.random.PRNGKey(0), n_layers)]
    opt = optax.adam(1e-2)
    state = opt.init(layers)

    @jax.jit
    def train_step(layers, state):
        nll, grads = jax.value_and_grad(lambda p: -jnp.mean(maf_log_prob(p, data)))(layers)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(layers, updates), state, nll

    nlls = []
    for _ in range(40):
        layers, state, nll = train_step(layers, state)
        nlls.append(nll)

    probe = data[:3]
    jac = jax.vmap(jax.jacfwd(lambda x: maf_forward(layers, x)[0]))(probe)
    sign, slogdet = jnp.linalg.slogdet(jac)
    u = jax.random.normal(jax.random.PRNGKey(1), (8, d))
    samples = jax.jit(maf_inverse)(layers, u)

    # ---------------------------------------------------------------- planar flows
    def target_log_density(z):
        comps = jnp.stack([jnp.sum(jax.scipy.stats.norm.logpdf(z, m, 0.6), -1)
                           for m in (jnp.array([1.5, 0.0]), jnp.array([-1.5, 0.5]))])
        return jax.scipy.special.logsumexp(comps, axis=0) - jnp.log(2.0)

    def u_hat(u, w):
        wu = w @ u
        return u + (-1.0 + jax.nn.softplus(wu) - wu) * w / jnp.sum(w ** 2)

    def planar(z, layer):
        u, w, b = layer["u"], layer["w"], layer["b"]
        uh = u_hat(u, w)
        act = jnp.tanh(z @ w + b)
        psi = (1.0 - act ** 2)[:, None] * w
        log_det = jnp.log(jnp.abs(1.0 + psi @ uh))
        return z + act[:, None] * uh, log_det

    def flow(params, z0):
        zk, log_dets = lax.scan(planar, z0, params)
        return zk, jnp.sum(log_dets, 0)

    n_planar = 6
    kp = jax.random.split(jax.random.PRNGKey(2), 2)
    planar_params = {"u": 0.1 * jax.random.normal(kp[0], (n_planar, 2)),
                     "w": 0.1 * jax.random.normal(kp[1], (n_planar, 2)) + 0.5,
                     "b": jnp.zeros(n_planar)}

    def reverse_kl(params, key):
        z0 = jax.random.normal(key, (64, 2))
        zk, log_det = flow(params, z0)
        log_q = jnp.sum(jax.scipy.stats.norm.logpdf(z0), -1) - log_det
        return jnp.mean(log_q - target_log_density(zk))

    popt = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(3e-2))
    pstate = popt.init(planar_params)

    @jax.jit
    def planar_step(params, state, key):
        loss, grads = jax.value_and_grad(reverse_kl)(params, key)
        updates, state = popt.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    kls = []
    for key in jax.random.split(jax.random.PRNGKey(3), 30):
        planar_params, pstate, loss = planar_step(planar_params, pstate, key)
        kls.append(loss)

    z_probe = jnp.array([[0.3, -0.2], [1.0, 1.0]])
    planar_jac = jax.vmap(jax.jacfwd(lambda z: flow(planar_params, z[None])[0][0]))(z_probe)
    return {"nlls": jnp.stack(nlls), "maf_layers": layers,
            "log_det": maf_forward(layers, probe)[1], "slogdet": slogdet, "sign": sign,
            "samples": samples, "roundtrip": maf_forward(layers, samples)[0],
            "noise": u, "kls": jnp.stack(kls), "planar_params": planar_params,
            "planar_log_det": flow(planar_params, z_probe)[1],
            "planar_slogdet": jnp.linalg.slogdet(planar_jac)[1]}


def test_maf_planar_flow_matches_jax():
    got, _ = check_against_optax("test_optax_gen_maf_planar_flow", program, rtol=2e-3,
                                 atol=2e-4)
    np.testing.assert_allclose(got["log_det"], got["slogdet"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["roundtrip"], got["noise"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["planar_log_det"], got["planar_slogdet"], rtol=1e-4,
                               atol=1e-5)
    assert got["nlls"][-1] < got["nlls"][0] and got["kls"][-5:].mean() < got["kls"][:5].mean()
