"""precond: diagonal preconditioned optimizers for PyTorch, and a lab to test them.

Layers, each depending only on those before it:
``optim`` -> ``curvature`` -> ``problems`` -> ``experiments`` -> ``cli``.
"""

__version__ = "0.1.0"
