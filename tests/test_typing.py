"""The package is typed (py.typed ships with it) and the annotations of the public
constructors and functions resolve: a type checker or `typing.get_type_hints` can read
every one of them."""

import importlib
import importlib.resources
import inspect
import typing

import pytest

import nanofn

MODULES = ["nanofn.nn", "nanofn.optim", "nanofn.tree"]


def test_py_typed_ships_with_the_package():
    assert importlib.resources.files("nanofn").joinpath("py.typed").is_file()


@pytest.mark.parametrize("modname", MODULES)
def test_public_annotations_resolve(modname):
    module = importlib.import_module(modname)
    checked = 0
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            typing.get_type_hints(obj)  # raises if an annotation names something undefined
            checked += 1
    assert checked > 5


def test_layer_constructors_are_annotated():
    from nanofn import nn
    for ctor in (nn.Dense, nn.Conv, nn.LayerNorm, nn.GRU, nn.MultiHeadAttention, nn.Embedding):
        hints = typing.get_type_hints(ctor)
        assert hints["return"] is nn.Layer, ctor.__name__
        assert len(hints) >= 2, ctor.__name__




def test_transforms_are_annotated():
    transforms = (nanofn.grad, nanofn.value_and_grad, nanofn.jvp, nanofn.vjp, nanofn.vmap,
                  nanofn.jacfwd, nanofn.jacrev, nanofn.hessian, nanofn.linearize, nanofn.jit,
                  nanofn.make_jaxpr, nanofn.eval_shape, nanofn.checkpoint)
    for fn in transforms:
        fn = inspect.unwrap(fn)
        hints = typing.get_type_hints(fn)  # raises if an annotation names something undefined
        assert "fun" in hints and "return" in hints, fn.__name__
