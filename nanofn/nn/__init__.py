"""nanofn.nn: activations, initializers, losses and stax-style layers (jax.nn + stax).

Functions (`relu`, `gelu`, `softmax`, `log_softmax`, `logsumexp`, `one_hot`, ...) have
jax.nn's names and meanings; `nanofn.nn.initializers` mirrors jax.nn.initializers and
`nanofn.nn.losses` mirrors optax's losses.

Layers are `(init, apply)` pairs, as in stax:

    init, apply = nn.serial(nn.Dense(128), nn.Relu, nn.Dense(10))
    out_shape, params = init(key, (-1, 64))        # -1: batch size not fixed
    logits = apply(params, x)

`apply` takes `rng=` (a PRNG key, for Dropout while training), `training=` (default
False) and, for models with BatchNorm, `state=`: when `state` is given, apply returns
`(outputs, new_state)`. See docs/nn.md for the protocol, the state design and a worked
example.

Example:
    >>> import nanofn
    >>> nn = nanofn.nn
    >>> init, apply = nn.serial(nn.Dense(8), nn.Relu, nn.Dense(2), nn.LogSoftmax)
    >>> out_shape, params = init(nanofn.random.key(0), (-1, 3))
    >>> out_shape, apply(params, nanofn.numpy.ones((4, 3))).shape
    ((-1, 2), (4, 2))
"""

from nanofn.nn import initializers as initializers
from nanofn.nn import losses as losses
from nanofn.nn._functions import (
    celu as celu, elu as elu, gelu as gelu, glu as glu, hard_sigmoid as hard_sigmoid,
    hard_silu as hard_silu, hard_swish as hard_swish, hard_tanh as hard_tanh,
    identity as identity, leaky_relu as leaky_relu, log_sigmoid as log_sigmoid,
    log_softmax as log_softmax, logsumexp as logsumexp, one_hot as one_hot, relu as relu,
    relu6 as relu6, selu as selu, sigmoid as sigmoid, silu as silu, soft_sign as soft_sign,
    softmax as softmax, softplus as softplus, standardize as standardize, swish as swish,
)
from nanofn.nn._base import Layer as Layer, init_state as init_state
from nanofn.nn._layers import (
    AvgPool as AvgPool, BatchNorm as BatchNorm, Celu as Celu, Conv as Conv,
    ConvTranspose as ConvTranspose, Dense as Dense, Dropout as Dropout, Elu as Elu,
    Embedding as Embedding, Exp as Exp, Flatten as Flatten, Gelu as Gelu,
    GlobalAvgPool as GlobalAvgPool, GlobalMaxPool as GlobalMaxPool, GroupNorm as GroupNorm,
    HardTanh as HardTanh, LayerNorm as LayerNorm, LeakyRelu as LeakyRelu,
    LogSigmoid as LogSigmoid, LogSoftmax as LogSoftmax, MaxPool as MaxPool,
    PixelShuffle as PixelShuffle, Relu as Relu, Relu6 as Relu6, Reshape as Reshape,
    Selu as Selu, Sigmoid as Sigmoid, Silu as Silu, Softmax as Softmax, Softplus as Softplus,
    SumPool as SumPool, Tanh as Tanh, Upsample as Upsample, ZeroPad as ZeroPad,
    elementwise as elementwise,
)
from nanofn.nn._combinators import (
    FanInConcat as FanInConcat, FanInSum as FanInSum, FanOut as FanOut, Identity as Identity,
    parallel as parallel, residual as residual, serial as serial,
    shape_dependent as shape_dependent,
)
from nanofn.nn._recurrent import (
    GRU as GRU, LSTM as LSTM, RNN as RNN, Bidirectional as Bidirectional, Cell as Cell,
    GRUCell as GRUCell, LSTMCell as LSTMCell, SimpleRNN as SimpleRNN,
    SimpleRNNCell as SimpleRNNCell,
)
from nanofn.nn._attention import (
    MultiHeadAttention as MultiHeadAttention,
    TransformerEncoderLayer as TransformerEncoderLayer,
    dot_product_attention as dot_product_attention, make_causal_mask as make_causal_mask,
)
from nanofn.nn._scaled import (
    get_scaled_dot_general_config as get_scaled_dot_general_config,
    scaled_dot_general as scaled_dot_general, scaled_matmul as scaled_matmul,
)
from nanofn.nn._summary import (
    count_flops as count_flops, param_table as param_table, summary as summary,
)

__all__ = [
    # functions
    "celu", "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "identity", "leaky_relu", "log_sigmoid", "log_softmax", "logsumexp", "one_hot", "relu",
    "relu6", "selu", "sigmoid", "silu", "soft_sign", "softmax", "softplus", "standardize",
    "swish", "dot_product_attention", "make_causal_mask",
    "get_scaled_dot_general_config", "scaled_dot_general", "scaled_matmul",
    # submodules
    "initializers", "losses",
    # the layer protocol
    "Layer", "init_state",
    # layers
    "AvgPool", "BatchNorm", "Conv", "ConvTranspose", "Dense", "Dropout", "Embedding",
    "Flatten", "GlobalAvgPool", "GlobalMaxPool", "GroupNorm", "LayerNorm", "MaxPool",
    "PixelShuffle", "Reshape", "SumPool", "Upsample", "ZeroPad", "elementwise",
    "Celu", "Elu", "Exp", "Gelu", "HardTanh", "LeakyRelu", "LogSigmoid", "LogSoftmax", "Relu",
    "Relu6", "Selu", "Sigmoid", "Silu", "Softmax", "Softplus", "Tanh",
    "MultiHeadAttention", "TransformerEncoderLayer",
    # recurrent
    "Bidirectional", "Cell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN",
    "SimpleRNNCell",
    # combinators
    "FanInConcat", "FanInSum", "FanOut", "Identity", "parallel", "residual", "serial",
    "shape_dependent",
    # looking at models
    "count_flops", "param_table", "summary",
]

from nanofn.nn._jax_functions import *  # noqa: E402,F401,F403  mish, squareplus, log1mexp...
from nanofn.nn import _jax_functions as _jf  # noqa: E402

__all__ += _jf.__all__
