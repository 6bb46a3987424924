"""fnn: functional neural networks built on the `transforms` library.

    import fnn
    from fnn import optim, checkpoint

    model = fnn.Sequential([fnn.Dense(128), fnn.relu, fnn.Dense(10)])
    params, state = model.init(key, x)
    y, state = model.apply(params, state, x, key=key, train=True)

Modules: `activations` (re-exported here), `initializers`, `layers` and `sequence`
(attention, Transformer blocks, LSTM/GRU, Conv1D, norms; both re-exported here),
`losses`, `data`, `optim`, `checkpoint`, `models` (the seeds' `Net`, ResNet-18/34 in PyTorch's
layout) and `interop` (`from_torch`/`to_torch`: PyTorch weights in and out);
`summary(model, params, state, x)` tabulates a model's layers, output shapes and parameter
counts.
"""
import os as _os


def _require_transforms():
    """Import the `transforms` package, or fail naming the file that shadows it.

    A script or module called ``transforms.py`` (or another package named ``transforms``)
    next to the user's code wins over the installed package on ``sys.path`` and would
    otherwise surface as a confusing ImportError deep inside fnn. The module is located
    before it is imported, so a shadowing script is named without being run."""
    import importlib.util

    def shadowed(where):
        return ImportError(
            f"fnn needs the `transforms` package of numbax, but `import transforms` finds "
            f"{where}, which shadows it; rename that file (or remove its directory from "
            f"sys.path) and delete any __pycache__ next to it")

    spec = importlib.util.find_spec("transforms")
    if spec is None:
        raise ImportError("fnn needs the `transforms` package of numbax, which is not "
                          "importable (is numbax installed?)")
    if spec.submodule_search_locations is None:     # a plain module, not the package
        raise shadowed(spec.origin)
    import transforms
    if not hasattr(transforms, "tree_util"):        # another package of that name
        raise shadowed(getattr(transforms, "__file__", None)
                       or list(spec.submodule_search_locations))
    return transforms


_require_transforms()

from transforms import __version__  # noqa: E402,F401  (one distribution: one version)
from transforms import debug as _debug  # noqa: E402

# frames inside this package are library frames: errors point at the user's own code
_debug.register_library_dir(_os.path.dirname(_os.path.abspath(__file__)))

from . import activations, data, initializers, losses  # noqa: E402,F401
from .activations import (elu, gelu, leaky_relu, log_sigmoid, log_softmax,  # noqa: E402,F401
                          logsumexp, one_hot, relu, relu6, sigmoid, silu, softmax, softplus,
                          swish, tanh)
from .layers import (AvgPool, BatchNorm, Conv2D, Dense, Dropout, Embedding,  # noqa: E402,F401
                     Flatten, Lambda, LayerNorm, MaxPool, Module, Sequential)
from .model_summary import Summary, summary  # noqa: E402,F401
from . import sequence  # noqa: E402,F401
from . import checkpoint, optim  # noqa: E402,F401
from .sequence import (GRU, LSTM, Conv1D, ConvTranspose2D, GroupNorm,  # noqa: E402,F401
                       MultiHeadAttention, PositionalEmbedding, RMSNorm, TransformerBlock,
                       causal_mask, dot_product_attention, padding_mask, rotary_embedding)

from . import interop, models  # noqa: E402,F401

__all__ = ["activations", "initializers", "layers", "losses", "data", "optim", "checkpoint",
           "models", "interop",
           "relu", "relu6", "sigmoid", "log_sigmoid", "tanh", "softplus", "gelu", "silu",
           "swish", "leaky_relu", "elu", "softmax", "log_softmax", "logsumexp", "one_hot",
           "Module", "Dense", "Conv2D", "MaxPool", "AvgPool", "Flatten", "Dropout", "BatchNorm",
           "LayerNorm", "Embedding", "Sequential", "Lambda", "sequence", "MultiHeadAttention",
           "TransformerBlock", "RMSNorm", "GroupNorm", "Conv1D", "ConvTranspose2D", "LSTM", "GRU",
           "PositionalEmbedding", "rotary_embedding", "causal_mask", "padding_mask",
           "dot_product_attention", "summary", "Summary", "__version__"]
