"""fnn: functional neural networks built on the `transforms` library.

    import fnn
    from fnn import optim, checkpoint

    model = fnn.Sequential([fnn.Dense(128), fnn.relu, fnn.Dense(10)])
    params, state = model.init(key, x)
    y, state = model.apply(params, state, x, key=key, train=True)

Modules: `activations` (re-exported here), `initializers`, `layers` and `sequence`
(attention, Transformer blocks, LSTM/GRU, Conv1D, norms; both re-exported here),
`losses`, `data`, `optim`, `checkpoint`.
"""
import os as _os

from transforms import debug as _debug

# frames inside this package are library frames: errors point at the user's own code
_debug.register_library_dir(_os.path.dirname(_os.path.abspath(__file__)))

from . import activations, data, initializers, losses  # noqa: E402,F401
from .activations import (elu, gelu, leaky_relu, log_sigmoid, log_softmax,  # noqa: E402,F401
                          logsumexp, one_hot, relu, relu6, sigmoid, silu, softmax, softplus,
                          swish, tanh)
from .layers import (AvgPool, BatchNorm, Conv2D, Dense, Dropout, Embedding,  # noqa: E402,F401
                     Flatten, Lambda, LayerNorm, MaxPool, Module, Sequential)
from . import sequence  # noqa: E402,F401
from . import checkpoint, optim  # noqa: E402,F401
from .sequence import (GRU, LSTM, Conv1D, ConvTranspose2D, GroupNorm,  # noqa: E402,F401
                       MultiHeadAttention, PositionalEmbedding, RMSNorm, TransformerBlock,
                       causal_mask, dot_product_attention, padding_mask, rotary_embedding)

__all__ = ["activations", "initializers", "layers", "losses", "data", "optim", "checkpoint",
           "relu", "relu6", "sigmoid", "log_sigmoid", "tanh", "softplus", "gelu", "silu",
           "swish", "leaky_relu", "elu", "softmax", "log_softmax", "logsumexp", "one_hot",
           "Module", "Dense", "Conv2D", "MaxPool", "AvgPool", "Flatten", "Dropout", "BatchNorm",
           "LayerNorm", "Embedding", "Sequential", "Lambda", "sequence", "MultiHeadAttention",
           "TransformerBlock", "RMSNorm", "GroupNorm", "Conv1D", "ConvTranspose2D", "LSTM", "GRU",
           "PositionalEmbedding", "rotary_embedding", "causal_mask", "padding_mask",
           "dot_product_attention"]
