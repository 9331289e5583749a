"""Experiments: specs, sweeps, the results store, plots and reports."""
