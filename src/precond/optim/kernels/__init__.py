"""Fast implementations (``foreach`` and ``fused``) of the functional rules.

Importing this package registers them in
:data:`precond.optim.functional._common.FAST_IMPLS`.
"""
