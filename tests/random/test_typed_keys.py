"""Typed PRNG keys (`random.key`): the shape and dtype semantics of `jax.random.key`'s keys,
the same draws as raw keys (`random.PRNGKey`), and their way through the transforms,
pytrees, checkpoints and the optimizers that hold keys.

What JAX does, observed with JAX 0.10.2: `key(0).shape == ()`, `str(key(0).dtype) ==
"key<fry>"`, `split(key(0)).shape == (2,)`, `split(key(0), (2, 3)).shape == (2, 3)`,
`split(key(0), 6).reshape(2, 3)[1, 2].shape == ()`, `key_data(key(3)).tolist() == [0, 3]`;
raw keys keep the `(..., 2)` layout.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax, random

U32 = np.dtype("uint32")


def words(k):
    return np.asarray(random.key_data(k))


def test_a_typed_key_is_a_scalar_of_the_key_dtype():
    k = random.key(3)
    assert k.shape == () and k.ndim == 0 and k.size == 1
    assert str(k.dtype) == "key<fry>" and k.dtype.name == "key<fry>"
    assert words(k).tolist() == [0, 3] and words(k).dtype == U32
    assert "key<fry>" in repr(k) and "[0 3]" in repr(k)
    assert nanofn.dtypes.issubdtype(k.dtype, nanofn.dtypes.prng_key)
    assert fnp.issubdtype(k.dtype, nanofn.dtypes.prng_key)
    assert not fnp.issubdtype(random.PRNGKey(3).dtype, nanofn.dtypes.prng_key)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num=st.integers(1, 5))
def test_typed_and_raw_keys_give_the_same_words_and_draws(seed, num):
    typed, raw = random.key(seed), random.PRNGKey(seed)
    np.testing.assert_array_equal(words(typed), raw)
    ts, rs = random.split(typed, num), random.split(raw, num)
    assert ts.shape == (num,) and rs.shape == (num, 2)
    np.testing.assert_array_equal(words(ts), rs)
    np.testing.assert_array_equal(words(random.fold_in(typed, 7)), random.fold_in(raw, 7))
    for draw in (lambda k: random.normal(k, (3,)), lambda k: random.randint(k, (4,), 0, 9),
                 lambda k: random.permutation(k, 5), lambda k: random.gamma(k, 2.0, (2,)),
                 lambda k: random.poisson(k, 3.0, (3,)), lambda k: random.bits(k, (2,))):
        np.testing.assert_array_equal(draw(typed), draw(raw))


def test_split_shapes_follow_the_key_axes():
    k = random.key(0)
    assert random.split(k).shape == (2,)
    assert random.split(k, (2, 3)).shape == (2, 3)
    assert random.split(k, 0).shape == (0,)
    grid = random.split(k, 6).reshape(2, 3)
    assert grid.shape == (2, 3) and grid[1, 2].shape == () and grid[1].shape == (3,)
    np.testing.assert_array_equal(words(grid[1, 2]), words(random.split(k, 6)[5]))
    a, b = random.split(k)  # unpacking, as `key, sub = split(key)`
    assert a.shape == b.shape == ()
    assert [x.shape for x in random.split(k, 3)] == [()] * 3 and len(random.split(k, 3)) == 3


def test_indexing_reshape_transpose_squeeze_act_on_the_key_axes():
    keys = random.split(random.key(1), 6)
    data = words(keys)
    grid = keys.reshape((2, 3))
    np.testing.assert_array_equal(words(grid), data.reshape(2, 3, 2))
    np.testing.assert_array_equal(words(grid.T), data.reshape(2, 3, 2).transpose(1, 0, 2))
    np.testing.assert_array_equal(words(grid.swapaxes(0, 1)), words(grid.T))
    np.testing.assert_array_equal(words(grid[:, 1]), data.reshape(2, 3, 2)[:, 1])
    np.testing.assert_array_equal(words(grid[..., 2]), data.reshape(2, 3, 2)[:, 2])
    np.testing.assert_array_equal(words(keys[fnp.array([4, 0])]), data[[4, 0]])
    np.testing.assert_array_equal(words(keys[::-2]), data[::-2])
    assert keys[None].shape == (1, 6) and keys[None].squeeze().shape == (6,)
    assert grid.ravel().shape == (6,) and grid.reshape(-1, 2).shape == (3, 2)
    with pytest.raises(ValueError, match="size other than 1"):
        grid.squeeze(0)


def test_comparison_and_what_keys_refuse():
    keys = random.split(random.key(2), 3)
    assert (keys == keys).tolist() == [True] * 3
    assert (keys != random.split(random.key(2), 3)).tolist() == [False] * 3
    assert bool(random.key(4) == random.wrap_key_data(np.array([0, 4], np.uint32)))
    with pytest.raises(TypeError):
        random.key(0) + 1
    with pytest.raises(TypeError, match="key_data"):
        np.asarray(random.key(0))
    with pytest.raises(TypeError, match="truth value"):
        bool(random.key(0))
    with pytest.raises(ValueError, match=r"array of keys of shape \(3,\).*vmap"):
        random.normal(keys)  # a ValueError in JAX too
    with pytest.raises(TypeError, match="words of keys"):
        random.wrap_key_data(keys)


def test_key_data_and_wrap_key_data_round_trip():
    keys = random.split(random.key(5), (2, 2))
    data = random.key_data(keys)
    assert data.shape == (2, 2, 2) and data.dtype == U32
    again = random.wrap_key_data(np.asarray(data), impl="threefry2x32", dtype=keys.dtype)
    assert again.shape == (2, 2)
    np.testing.assert_array_equal(words(again), data)
    assert random.key_impl(keys) == "threefry2x32"
    # raw keys are their own data
    raw = random.PRNGKey(5)
    assert random.key_data(raw) is raw


def test_typed_keys_through_jit_vmap_scan_and_loops():
    k = random.key(11)
    split = nanofn.jit(random.split)(k)
    assert split.shape == (2,)
    np.testing.assert_array_equal(words(split), words(random.split(k)))
    made = nanofn.jit(random.key)(np.int32(11))
    np.testing.assert_array_equal(words(made), words(k))

    keys = random.split(k, 4)
    draw = lambda key: random.normal(key, (3,))  # noqa: E731
    batched = nanofn.vmap(draw)(keys)
    np.testing.assert_array_equal(batched, np.stack([np.asarray(draw(x)) for x in keys]))
    grid = keys.reshape(2, 2)
    # mapping axis 1 of the transposed grid visits grid's rows: result[i, j] = draw(grid[i, j])
    np.testing.assert_array_equal(nanofn.vmap(nanofn.vmap(draw), in_axes=1)(grid.T),
                                  np.asarray(nanofn.vmap(draw)(grid.ravel())).reshape(2, 2, 3))
    subkeys = nanofn.vmap(random.split)(keys)  # typed keys come out of vmap typed
    assert subkeys.shape == (4, 2)
    np.testing.assert_array_equal(words(subkeys[2]), words(random.split(keys[2])))

    def body(key, _):
        key, sub = random.split(key)
        return key, random.uniform(sub)
    last, xs = lax.scan(body, k, None, length=3)
    key, want = k, []
    for _ in range(3):
        key, sub = random.split(key)
        want.append(float(random.uniform(sub)))
    np.testing.assert_allclose(xs, want)
    np.testing.assert_array_equal(words(last), words(key))
    total, _ = lax.scan(lambda c, kk: (c + random.normal(kk), None), 0.0, keys)
    np.testing.assert_allclose(total, sum(float(random.normal(x)) for x in keys), rtol=1e-6)
    out = lax.fori_loop(0, 3, lambda i, kk: random.fold_in(kk, i), k)
    want_key = k
    for i in range(3):
        want_key = random.fold_in(want_key, i)
    np.testing.assert_array_equal(words(out), words(want_key))
    picked = lax.cond(True, lambda a, b: a, lambda a, b: b, keys[0], keys[1])
    np.testing.assert_array_equal(words(picked), words(keys[0]))


def test_grad_with_a_typed_key_argument():
    k = random.key(0)
    f = lambda w, key: fnp.sum(w * random.normal(key, (3,)))  # noqa: E731
    np.testing.assert_allclose(nanofn.grad(f)(fnp.ones(3), k), random.normal(k, (3,)))


def test_checkpoints_and_optimizer_states_keep_typed_keys(tmp_path):
    from nanofn import optim, serialization
    tree = {"keys": random.split(random.key(1), 3), "raw": random.PRNGKey(2), "w": fnp.ones(2)}
    serialization.save(tmp_path / "ck.npz", tree)
    back = serialization.load(tmp_path / "ck.npz")
    assert back["keys"].shape == (3,) and str(back["keys"].dtype) == "key<fry>"
    np.testing.assert_array_equal(words(back["keys"]), words(tree["keys"]))
    assert np.asarray(back["raw"]).tolist() == [0, 2]

    tx = optim.add_noise(0.1, 0.55, key=random.key(3))
    params = {"w": fnp.ones(4)}
    state = tx.init(params)
    updates, state = tx.update(params, state)
    raw_tx = optim.add_noise(0.1, 0.55, key=random.PRNGKey(3))
    raw_updates, _ = raw_tx.update(params, raw_tx.init(params))
    np.testing.assert_array_equal(updates["w"], raw_updates["w"])
    unwrapped = optim.tree.unwrap_random_key_data(state)
    assert all(getattr(leaf, "dtype", None) != random.key(0).dtype
               for leaf in nanofn.tree.leaves(unwrapped))


def test_dropout_and_initialisers_take_typed_keys():
    from nanofn import nn
    init, apply = nn.serial(nn.Dense(4), nn.Dropout(0.5))
    for make in (random.key, random.PRNGKey):
        _, params = init(make(0), (-1, 3))
        out = apply(params, fnp.ones((2, 3)), rng=make(1), training=True)
        assert out.shape == (2, 4)
    k_typed = apply(init(random.key(0), (-1, 3))[1], fnp.ones((2, 3)), rng=random.key(1),
                    training=True)
    k_raw = apply(init(random.PRNGKey(0), (-1, 3))[1], fnp.ones((2, 3)),
                  rng=random.PRNGKey(1), training=True)
    np.testing.assert_array_equal(k_typed, k_raw)


def test_numpy_functions_move_keys_as_jax_does():
    # shapes as JAX 0.10.2 gives them for the same calls on jax.random.key arrays
    k = random.key(0)
    ks = random.split(k, 4)
    g = ks.reshape(2, 2)
    w, gw = words(ks), words(g)
    mask = fnp.array([True, False, True, False])
    cases = {
        "stack": (fnp.stack([k, k]), np.stack([words(k)] * 2)),
        "concatenate": (fnp.concatenate([ks, ks]), np.concatenate([w, w])),
        "vstack": (fnp.vstack([ks, ks]), np.stack([w, w])),
        "where": (fnp.where(mask, ks, ks[::-1]), np.where(np.asarray(mask)[:, None], w, w[::-1])),
        "transpose": (fnp.transpose(g), gw.transpose(1, 0, 2)),
        "moveaxis": (fnp.moveaxis(g, 0, 1), gw.transpose(1, 0, 2)),
        "take": (fnp.take(ks, fnp.array([3, 1])), w[[3, 1]]),
        "take_along_axis": (fnp.take_along_axis(g, fnp.array([[1], [0]]), axis=1),
                            np.stack([gw[0, 1:2], gw[1, 0:1]])),
        "roll": (fnp.roll(ks, 1), np.roll(w, 1, axis=0)),
        "flip": (fnp.flip(ks), w[::-1]),
        "tile": (fnp.tile(ks, 2), np.tile(w, (2, 1))),
        "repeat": (fnp.repeat(ks, 2), np.repeat(w, 2, axis=0)),
        "broadcast_to": (fnp.broadcast_to(k, (3,)), np.broadcast_to(words(k), (3, 2))),
        "expand_dims": (fnp.expand_dims(ks, 0), w[None]),
        "squeeze": (fnp.squeeze(ks[None]), w),
        "delete": (fnp.delete(ks, 1), np.delete(w, 1, axis=0)),
        "insert": (fnp.insert(ks, 1, k), np.insert(w, 1, words(k), axis=0)),
        "asarray": (fnp.asarray(ks), w),
        "array": (fnp.array([k, k]), np.stack([words(k)] * 2)),
        "split": (fnp.split(ks, 2)[1], w[2:]),
        "unstack": (fnp.unstack(ks)[2], w[2]),
    }
    for name, (got, want) in cases.items():
        assert type(got).__name__ == "PRNGKeyArray", name
        assert got.shape == want.shape[:-1], (name, got.shape, want.shape)
        np.testing.assert_array_equal(words(got), want, err_msg=name)
    assert fnp.dstack([ks, ks]).shape == (1, 4, 2) and fnp.column_stack([ks, ks]).shape == (4, 2)
    assert fnp.atleast_2d(k).shape == (1, 1) and fnp.shape(ks) == (4,) and fnp.ndim(g) == 2
    np.testing.assert_array_equal(words(ks.at[2].set(k)), np.insert(np.delete(w, 2, 0), 2,
                                                                     words(k), axis=0))
    np.testing.assert_array_equal(words(ks.at[1].get()), w[1])
    # under jit and vmap too
    stacked = nanofn.jit(lambda a, b: fnp.stack([a, b]))(ks[0], ks[1])
    np.testing.assert_array_equal(words(stacked), w[:2])
    flipped = nanofn.vmap(lambda row: fnp.flip(row))(g)
    np.testing.assert_array_equal(words(flipped), gw[:, ::-1])
    # plain arrays are untouched by the key path
    np.testing.assert_array_equal(fnp.stack([fnp.ones(2), fnp.zeros(2)]), [[1, 1], [0, 0]])


# ------------------------------------------------------------------------ found against JAX


def test_a_keys_gradient_is_float0_of_the_key_shape():
    # JAX: grad(..., allow_int=True) and vjp give a float0 array of the keys' shape
    f = lambda k, x: x * random.normal(k)  # noqa: E731
    gk, gx = nanofn.grad(f, argnums=(0, 1), allow_int=True)(random.key(0), 2.0)
    assert gk.dtype == nanofn.dtypes.float0 and gk.shape == ()
    np.testing.assert_allclose(gx, random.normal(random.key(0)), rtol=1e-6)
    keys = random.split(random.key(1), 3)
    _, pullback = nanofn.vjp(lambda ks, x: x * nanofn.vmap(random.normal)(ks), keys, 1.0)
    ct_keys, ct_x = pullback(fnp.ones(3))
    assert ct_keys.dtype == nanofn.dtypes.float0 and ct_keys.shape == (3,)


def test_tree_map_over_keys_returns_what_the_function_returns():
    # the function sees the words; what it returns is not wrapped as keys unless it is words
    tree = {"k": random.split(random.key(0), 3), "x": fnp.ones(2)}
    assert nanofn.tree.map(lambda v: None, tree, is_leaf=lambda v: v is None)["k"] is None
    assert nanofn.tree.map(lambda v: v.dtype == U32, tree) == {"k": True, "x": False}
    kept = nanofn.tree.map(lambda v: v, tree)["k"]
    assert kept.shape == (3,) and str(kept.dtype) == "key<fry>"


def test_key_dtype_attributes_and_key_impl_errors():
    d = random.key(0).dtype
    assert d.itemsize == 8 and str(d._impl) == "fry"
    keys = random.split(random.key(0), (2, 3))
    assert keys.nbytes == 48 and keys.itemsize == 8
    np.testing.assert_array_equal(words(keys.ravel().take(fnp.array([4, 0]))),
                                  words(keys.ravel())[[4, 0]])
    assert random.key_impl(random.split(random.PRNGKey(1), 3)) == "threefry2x32"
    with pytest.raises(TypeError, match="key_impl"):
        random.key_impl(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="key_impl"):
        random.key_impl(np.ones(2, np.float32))


def test_seeds_as_jax_takes_them():
    with pytest.raises(OverflowError):
        random.key(2**63)
    assert words(random.key(-2**31 - 1)).tolist() == [0, 2**31 - 1]
    assert words(nanofn.vmap(random.key)(fnp.arange(3))).tolist() == [[0, 0], [0, 1], [0, 2]]
    assert words(nanofn.jit(nanofn.vmap(random.key))(fnp.arange(2))).tolist() == [[0, 0], [0, 1]]


def test_indexing_a_key_counts_only_the_key_axes():
    keys = random.split(random.key(0), (2, 3))
    with pytest.raises(IndexError, match="Too many indices"):
        random.key(0)[0]
    with pytest.raises(IndexError, match="Too many indices"):
        keys[0, 1, 0]
    assert keys[0, ..., 1].shape == () and keys[..., None].shape == (2, 3, 1)
    mask = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(words(keys[mask]), words(keys)[mask])


def test_keys_compare_only_with_keys():
    keys = random.split(random.key(0), 3)
    assert (keys == keys[1]).tolist() == [False, True, False]
    for other in (0, random.PRNGKey(0), np.zeros(2, U32)):
        with pytest.raises(TypeError, match="keys compare only with keys"):
            random.key(0) == other  # noqa: B015
        with pytest.raises(TypeError, match="keys compare only with keys"):
            random.key(0) != other  # noqa: B015
    with pytest.raises(TypeError, match="get and set only"):
        keys.at[1].add(keys[0])


def test_more_numpy_functions_take_keys():
    ks = random.split(random.key(2), 3)
    grid = random.split(random.key(0), 6).reshape(2, 3)
    w, g = words(ks), words(grid)
    assert fnp.equal(ks, ks[::-1]).tolist() == [False, True, False]
    assert fnp.not_equal(ks, ks[::-1]).tolist() == [True, False, True]
    assert bool(fnp.array_equal(ks, ks)) and not bool(fnp.array_equal(ks, ks[:2]))
    assert fnp.isin(ks, ks[1:]).tolist() == [False, True, True]
    assert fnp.isin(ks, ks[1:], invert=True).tolist() == [True, False, False]
    np.testing.assert_array_equal(words(fnp.diagonal(grid)), g[[0, 1], [0, 1]])
    flat = words(fnp.diagflat(ks))
    np.testing.assert_array_equal(flat[[0, 1, 2], [0, 1, 2]], w)
    assert flat[0, 1].tolist() == [0, 0]
    m0, m1 = fnp.meshgrid(ks, ks[:2])
    assert m0.shape == m1.shape == (2, 3)
    np.testing.assert_array_equal(words(m1)[:, 0], w[:2])
    (ix,) = fnp.ix_(ks)
    np.testing.assert_array_equal(words(ix), w)
    k = random.key(9)
    np.testing.assert_array_equal(words(fnp.put(ks, 1, k, inplace=False))[1], words(k))
    placed = words(fnp.place(ks, np.array([True, False, True]), k, inplace=False))
    assert placed[0].tolist() == placed[2].tolist() == words(k).tolist()
    filled = words(fnp.fill_diagonal(grid, k, inplace=False))
    assert filled[1, 1].tolist() == words(k).tolist() and filled[0, 1].tolist() == g[0, 1].tolist()
    assert words(fnp.full((2,), k)).tolist() == [words(k).tolist()] * 2


def test_lax_functions_run_on_the_key_words():
    # nanofn/_keys.KEY_LAX_FUNCTIONS: what `accepting_keys` makes of each of these lax
    # functions gives JAX's key arrays (the values below are JAX's, by construction on words)
    from nanofn import _keys
    L = {name: getattr(lax, name) for name in _keys.KEY_LAX_FUNCTIONS}  # wrapped by nanofn.lax
    ks, other = random.split(random.key(0), 4), random.split(random.key(1), 4)
    w, wo = words(ks), words(other)
    pred = np.array([True, False, True, False])
    np.testing.assert_array_equal(words(L["select"](pred, ks, other)),
                                  np.where(pred[:, None], w, wo))
    np.testing.assert_array_equal(words(L["select_n"](pred, ks, other)),
                                  np.where(pred[:, None], wo, w))
    np.testing.assert_array_equal(words(L["concatenate"]([ks, other[:1]], 0)),
                                  np.concatenate([w, wo[:1]]))
    np.testing.assert_array_equal(words(L["reshape"](ks, (2, 2))), w.reshape(2, 2, 2))
    assert L["broadcast_in_dim"](ks[0], (2, 3), ()).shape == (2, 3)
    assert L["broadcast"](ks[0], (5,)).shape == (5,)
    np.testing.assert_array_equal(words(L["dynamic_slice"](ks, (1,), (2,))), w[1:3])
    np.testing.assert_array_equal(words(L["dynamic_slice_in_dim"](ks, 2, 2)), w[2:4])
    upd = words(L["dynamic_update_slice"](ks, other[:2], (1,)))
    np.testing.assert_array_equal(upd, np.concatenate([w[:1], wo[:2], w[3:]]))
    upd = words(L["dynamic_update_index_in_dim"](ks, other[3], 2, 0))
    np.testing.assert_array_equal(upd[2], wo[3])
    np.testing.assert_array_equal(words(L["dynamic_index_in_dim"](ks, 2, keepdims=False)), w[2])
    np.testing.assert_array_equal(words(L["index_in_dim"](ks, 3, keepdims=False)), w[3])
    np.testing.assert_array_equal(words(L["slice"](ks, (1,), (3,))), w[1:3])
    np.testing.assert_array_equal(words(L["slice_in_dim"](ks, 0, 4, 2)), w[::2])
    grid = ks.reshape(1, 2, 2)
    assert L["squeeze"](grid, (0,)).shape == (2, 2)
    assert L["expand_dims"](ks, (0,)).shape == (1, 4)
    np.testing.assert_array_equal(words(L["transpose"](ks.reshape(2, 2), (1, 0))),
                                  w.reshape(2, 2, 2).transpose(1, 0, 2))
    np.testing.assert_array_equal(words(L["rev"](ks, (0,))), w[::-1])
    np.testing.assert_array_equal(words(L["pad"](ks, other[0], [(1, 0, 0)]))[0], wo[0])
    assert L["eq"](ks, ks).tolist() == [True] * 4 and L["ne"](ks, other).tolist() == [True] * 4
    # and under jit, with traced indices
    got = nanofn.jit(lambda k, i: L["dynamic_index_in_dim"](k, i, keepdims=False))(ks, 1)
    np.testing.assert_array_equal(words(got), w[1])
