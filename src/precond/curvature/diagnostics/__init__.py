"""Diagnostics for any training loop: callbacks measured every k steps (see :mod:`.base`)."""

from .agd import AGDAdaptiveFraction, GradientDifference
from .agd_step import AGDEffectiveStep, agd_effective_steps
from .base import Diagnostic, StepContext, flat_grad, run_after, run_before
from .noise import GradientNoise, noise_statistics, nsr_summary, sigma_summary
from .smoothness import AnisotropicSmoothness, smoothness_summary, smoothness_vector
from .sophia import SophiaWinRate
from .spectrum import HessianSpectrum, extreme_eigenvalues, spectrum_summary

__all__ = [
    "AGDAdaptiveFraction", "AGDEffectiveStep", "AnisotropicSmoothness", "Diagnostic", "GradientDifference", "GradientNoise",
    "HessianSpectrum", "SophiaWinRate", "StepContext", "extreme_eigenvalues", "flat_grad", "noise_statistics",
    "nsr_summary", "run_after", "run_before", "sigma_summary", "agd_effective_steps", "smoothness_summary", "smoothness_vector",
    "spectrum_summary",
]  # fmt: skip
