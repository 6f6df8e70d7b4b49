"""Port: policy-gradient reinforcement learning (REINFORCE with a baseline, then PPO-clip
with generalised advantage estimation) in the style of the small JAX RL scripts people
write from the PPO paper and the purejaxrl-style single-file agents.

The environment is a deterministic 1-d chain written with `jnp`: the agent starts in the
middle, moves left, stays or moves right, is rewarded for reaching the right end and pays
a small cost per step; an episode ends at either end and the state then resets. Rollouts
are a `lax.scan` over time with `jax.random.categorical` actions, vmapped over a few
parallel environments. Returns and GAE advantages come from reverse `lax.scan`s; the
value targets are `stop_gradient`-ed; the optimiser is `optax.chain(clip_by_global_norm,
adam)`; the PPO loss has clipped ratios, a value loss and an entropy bonus, and is run
for a few epochs over shuffled minibatches.
"""

import numpy as np

from _jax_port import check_against_optax

N_STATES = 7
N_ACTIONS = 3
N_ENVS = 4
HORIZON = 16


def program(jax, jnp, optax):
    lax = jax.lax

    # ----- the environment: a chain of N_STATES cells, one-hot observations.
    def env_reset():
        return jnp.int32(N_STATES // 2)

    def env_step(state, action):
        nxt = jnp.clip(state + action - 1, 0, N_STATES - 1)
        at_goal = nxt == N_STATES - 1
        at_trap = nxt == 0
        reward = jnp.where(at_goal, 1.0, jnp.where(at_trap, -0.5, -0.02))
        done = at_goal | at_trap
        nxt = jnp.where(done, env_reset(), nxt)
        return nxt, reward, done

    def observe(state):
        return jax.nn.one_hot(state, N_STATES)

    # ----- an actor-critic MLP as a pytree of arrays.
    def init_params(key, hidden=16):
        k1, k2, k3 = jax.random.split(key, 3)
        glorot = jax.nn.initializers.glorot_normal()
        return {"torso": {"w": glorot(k1, (N_STATES, hidden)), "b": jnp.zeros(hidden)},
                "pi": {"w": 0.1 * glorot(k2, (hidden, N_ACTIONS)), "b": jnp.zeros(N_ACTIONS)},
                "v": {"w": glorot(k3, (hidden, 1)), "b": jnp.zeros(1)}}

    def apply(params, obs):
        h = jnp.tanh(obs @ params["torso"]["w"] + params["torso"]["b"])
        logits = h @ params["pi"]["w"] + params["pi"]["b"]
        value = (h @ params["v"]["w"] + params["v"]["b"])[..., 0]
        return logits, value

    # ----- rollouts: scan over time for one env, vmap over envs.
    def rollout_one(params, key, state0):
        def step(state, k):
            obs = observe(state)
            logits, value = apply(params, obs)
            action = jax.random.categorical(k, logits)
            logp = jax.nn.log_softmax(logits)[action]
            nxt, reward, done = env_step(state, action)
            return nxt, {"obs": obs, "action": action, "logp": logp, "value": value,
                         "reward": reward, "done": done}

        last, traj = lax.scan(step, state0, jax.random.split(key, HORIZON))
        _, last_value = apply(params, observe(last))
        return last, traj, last_value

    rollout_envs = jax.vmap(rollout_one, in_axes=(None, 0, 0))

    @jax.jit
    def rollout(params, key, states):
        return rollout_envs(params, jax.random.split(key, N_ENVS), states)

    # ----- discounted returns and GAE with reverse scans.
    def discounted_returns(rewards, dones, bootstrap, gamma=0.95):
        def body(ret, x):
            r, d = x
            ret = r + gamma * ret * (1.0 - d)
            return ret, ret
        _, out = lax.scan(body, bootstrap, (rewards, dones.astype(jnp.float32)), reverse=True)
        return out

    def gae(rewards, values, dones, last_value, gamma=0.95, lam=0.9):
        next_values = jnp.concatenate([values[1:], last_value[None]])
        not_done = 1.0 - dones.astype(jnp.float32)
        deltas = rewards + gamma * next_values * not_done - values

        def body(adv, x):
            delta, nd = x
            adv = delta + gamma * lam * nd * adv
            return adv, adv
        _, adv = lax.scan(body, jnp.zeros_like(last_value), (deltas, not_done), reverse=True)
        return adv, adv + values

    # ----- REINFORCE with a value baseline.
    def reinforce_loss(params, traj, returns):
        logits, values = apply(params, traj["obs"])
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits),
                                   traj["action"][..., None], axis=-1)[..., 0]
        adv = jax.lax.stop_gradient(returns - values)
        pg = -jnp.mean(logp * adv)
        value_loss = 0.5 * jnp.mean((values - returns) ** 2)
        return pg + 0.5 * value_loss

    # ----- PPO-clip.
    def ppo_loss(params, batch, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
        logits, values = apply(params, batch["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, batch["action"][:, None], axis=1)[:, 0]
        ratio = jnp.exp(logp - batch["logp"])
        adv = batch["adv"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        unclipped = ratio * adv
        clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
        policy_loss = -jnp.mean(jnp.minimum(unclipped, clipped))
        value_loss = jnp.mean((values - lax.stop_gradient(batch["target"])) ** 2)
        entropy = -jnp.mean(jnp.sum(jax.nn.softmax(logits) * logp_all, axis=-1))
        total = policy_loss + vf_coef * value_loss - ent_coef * entropy
        clip_frac = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
        return total, {"policy": policy_loss, "value": value_loss, "entropy": entropy,
                       "clip_frac": clip_frac}

    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(3e-2))

    @jax.jit
    def reinforce_update(params, opt_state, key, states):
        states, traj, last_value = rollout(params, key, states)
        # (envs, time) -> returns per env
        returns = jax.vmap(discounted_returns)(traj["reward"], traj["done"],
                                               jnp.zeros(N_ENVS))
        loss, grads = jax.value_and_grad(reinforce_loss)(params, traj, returns)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, states, loss, \
            traj["reward"].sum()

    def ppo_epoch(carry, key, data, n_minibatches=4):
        params, opt_state = carry
        n = data["obs"].shape[0]
        perm = jax.random.permutation(key, n)
        shuffled = jax.tree_util.tree_map(
            lambda x: x[perm].reshape((n_minibatches, -1) + x.shape[1:]), data)

        def minibatch(carry, batch):
            params, opt_state = carry
            (loss, aux), grads = jax.value_and_grad(ppo_loss, has_aux=True)(params, batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (loss, aux)

        return lax.scan(minibatch, (params, opt_state), shuffled)

    @jax.jit
    def ppo_update(params, opt_state, key, states):
        k_roll, k_epochs = jax.random.split(key)
        states, traj, last_value = rollout(params, k_roll, states)
        adv, target = jax.vmap(gae)(traj["reward"], traj["value"], traj["done"], last_value)
        data = {"obs": traj["obs"], "action": traj["action"], "logp": traj["logp"],
                "adv": adv, "target": target}
        data = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), data)
        (params, opt_state), (losses, aux) = lax.scan(
            lambda c, k: ppo_epoch(c, k, data), (params, opt_state),
            jax.random.split(k_epochs, 3))
        return params, opt_state, states, losses, aux, traj["reward"].sum(), adv

    out = {}
    key = jax.random.key(0)
    k_init, k_rf, k_ppo = jax.random.split(key, 3)
    params0 = init_params(k_init)
    states0 = jnp.full((N_ENVS,), env_reset())

    # Returns / GAE on a hand-made trajectory.
    rew = jnp.array([0.0, -0.02, 1.0, -0.02, -0.5, -0.02])
    dn = jnp.array([False, False, True, False, True, False])
    vals = jnp.array([0.1, 0.2, 0.5, -0.1, -0.2, 0.0])
    out["returns_hand"] = discounted_returns(rew, dn, jnp.float32(0.3))
    out["gae_hand"] = gae(rew, vals, dn, jnp.float32(0.3))
    out["gae_lambda1_target"] = gae(rew, vals, dn, jnp.float32(0.3), lam=1.0)[1]

    # REINFORCE.
    params, opt_state, states = params0, optimizer.init(params0), states0
    rf_losses, rf_rewards = [], []
    for k in jax.random.split(k_rf, 8):
        params, opt_state, states, loss, total_reward = reinforce_update(
            params, opt_state, k, states)
        rf_losses.append(loss)
        rf_rewards.append(total_reward)
    out["reinforce"] = {"losses": jnp.stack(rf_losses), "rewards": jnp.stack(rf_rewards),
                        "params": params, "states": states}

    # PPO.
    params, opt_state, states = params0, optimizer.init(params0), states0
    ppo_losses, ppo_rewards = [], []
    for i, k in enumerate(jax.random.split(k_ppo, 6)):
        params, opt_state, states, losses, aux, total_reward, adv = ppo_update(
            params, opt_state, k, states)
        ppo_losses.append(losses)
        ppo_rewards.append(total_reward)
        if i == 0:
            out["ppo_first"] = {"aux": aux, "adv": adv}
    out["ppo"] = {"losses": jnp.stack(ppo_losses), "rewards": jnp.stack(ppo_rewards),
                  "params": params, "states": states,
                  "opt_mu": opt_state[1][0].mu}
    # Greedy policy of the trained agent over all states.
    logits, values = apply(params, jnp.eye(N_STATES))
    out["policy_probs"] = jax.nn.softmax(logits)
    out["greedy"] = jnp.argmax(logits, axis=-1)
    out["values"] = values
    return out


def test_policy_gradient_matches_optax():
    got, ref = check_against_optax("test_optax_seq_policy_gradient", program,
                                   rtol=2e-3, atol=2e-4)
    # With lambda = 1 the GAE target (advantage + value) is the bootstrapped return.
    np.testing.assert_allclose(got["gae_lambda1_target"], got["returns_hand"], rtol=1e-5)
    # Both agents learn to walk right: more reward at the end than at the start.
    assert got["reinforce/rewards"][-1] > got["reinforce/rewards"][0]
    assert got["ppo/rewards"][-1] > got["ppo/rewards"][0]
    clip_frac = got["ppo_first/aux/clip_frac"]
    assert np.all((clip_frac >= 0) & (clip_frac <= 1))
    np.testing.assert_allclose(np.asarray(got["policy_probs"]).sum(-1), 1.0, rtol=1e-5)
