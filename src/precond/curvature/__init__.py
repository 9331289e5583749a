"""Curvature: Hessian and Gauss-Newton quantities, stochastic diagonal estimators, diagnostics."""
