"""fnn: functional neural networks built on the `transforms` library."""
