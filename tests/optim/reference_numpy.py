"""Plain float64 NumPy re-statements of the papers' algorithms, independent of precond.

Each class keeps its own state and returns the new parameter vector from ``step(x, g)``.
Written from the papers (and, for options, the published code's documented behaviour in
``shared/notes/references.md``), deliberately in the most literal form: AGD stores the
previous momentum explicitly instead of using precond's two-coefficient rewrite.
"""

from __future__ import annotations

import numpy as np


class AGDRef:
    """Yue et al. 2023, Algorithm 1, with the published options."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), delta=1e-5, weight_decay=0.0, weight_decouple=True,
                 fixed_decay=False, amsgrad=False, win=False, clip=None, win_z_init="param"):
        self.lr, (self.b1, self.b2), self.delta = lr, betas, delta
        self.wd, self.decouple, self.fixed, self.amsgrad = weight_decay, weight_decouple, fixed_decay, amsgrad
        self.win, self.clip, self.win_z_init = win, clip, win_z_init
        self.t = 0
        self.m = self.b = self.bmax = self.z = None

    def step(self, x, g):
        x, g = x.copy(), g.copy()
        if self.m is None:
            self.m, self.b, self.bmax = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
            self.z = x.copy() if self.win_z_init == "param" else np.zeros_like(x)
        if not self.win:
            if self.decouple:
                x *= 1 - (self.wd if self.fixed else self.lr * self.wd)
            else:
                g = g + self.wd * x
        self.t += 1
        t, b1, b2 = self.t, self.b1, self.b2
        m_prev = self.m.copy()
        self.m = b1 * self.m + (1 - b1) * g
        if t == 1:
            s = self.m / (1 - b1**t)
        else:
            s = self.m / (1 - b1**t) - m_prev / (1 - b1 ** (t - 1))
        self.b = b2 * self.b + (1 - b2) * s * s
        if self.amsgrad:
            self.bmax = np.maximum(self.bmax, self.b)
            bb = self.bmax
        else:
            bb = self.b
        ratio = self.m / np.maximum(np.sqrt(bb), self.delta * np.sqrt(1 - b2**t))
        if self.clip is not None:
            ratio = np.clip(ratio, -self.clip, self.clip)
        eta = self.lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        if not self.win:
            return x - eta * ratio
        self.z = (self.z - eta * ratio) / (1 + self.wd * eta)
        tau = 1 / (3 + 2 * eta * self.wd)
        return tau * x - 2 * tau * eta * ratio + 2 * tau * self.z


class AdaBoundRef:
    """Luo et al. 2019, Algorithm 2 (AdaBound) / AMSBound, as the authors' code behaves."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0, amsbound=False):
        self.lr, (self.b1, self.b2), self.final_lr, self.gamma = lr, betas, final_lr, gamma
        self.eps, self.wd, self.ams = eps, weight_decay, amsbound
        self.t, self.m, self.v, self.vmax = 0, None, None, None

    def step(self, x, g, lr=None, base_lr=None):
        lr = self.lr if lr is None else lr
        base_lr = self.lr if base_lr is None else base_lr
        if self.m is None:
            self.m, self.v, self.vmax = (np.zeros_like(x) for _ in range(3))
        g = g + self.wd * x
        self.t += 1
        t = self.t
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        if self.ams:
            self.vmax = np.maximum(self.vmax, self.v)
            denom = np.sqrt(self.vmax) + self.eps
        else:
            denom = np.sqrt(self.v) + self.eps
        final = self.final_lr * lr / base_lr
        lower, upper = final * (1 - 1 / (self.gamma * t + 1)), final * (1 + 1 / (self.gamma * t))
        rate = np.clip(lr * np.sqrt(1 - self.b2**t) / (1 - self.b1**t) / denom, lower, upper)
        return x - rate * self.m


class AdaGradNormRef:
    """Ward, Wu, Bottou 2019: b_{j+1}^2 = b_j^2 + ||G_j||^2, x_{j+1} = x_j - eta G_j / b_{j+1}."""

    def __init__(self, lr=0.1, b0_sq=0.0, eps=1e-10):
        self.lr, self.b_sq, self.eps = lr, b0_sq, eps

    def step(self, xs, gs):
        """``xs``/``gs``: lists of arrays sharing one accumulator."""
        self.b_sq += sum(float(np.sum(g * g)) for g in gs)
        b = np.sqrt(self.b_sq) + self.eps
        return [x - self.lr * g / b for x, g in zip(xs, gs)]


class EMAMomentumRef:
    """Lecture notes: v_t = beta v_{t-1} + (1-beta) g_t, theta -= gamma v_t (Nesterov: beta v_t + (1-beta) g_t)."""

    def __init__(self, lr, beta, nesterov=False):
        self.lr, self.beta, self.nesterov, self.v = lr, beta, nesterov, None

    def step(self, x, g):
        if self.v is None:
            self.v = np.zeros_like(x)
        self.v = self.beta * self.v + (1 - self.beta) * g
        d = self.beta * self.v + (1 - self.beta) * g if self.nesterov else self.v
        return x - self.lr * d


class AdamNotesRef:
    """Lecture notes' six lines, eps inside the square root: theta -= gamma m_hat / sqrt(v_hat + eps)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t, self.m, self.v = 0, None, None

    def step(self, x, g):
        if self.m is None:
            self.m, self.v = np.zeros_like(x), np.zeros_like(x)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        return x - self.lr * m_hat / np.sqrt(v_hat + self.eps)
