r"""Across training: a parameter (or state) that the loss sees only through its direction.

System (proofs/gd.md): :math:`L(w) = f(w/\|w\|)`, so :math:`\langle w, \nabla L\rangle = 0` and
:math:`\nabla L(w) = \hat g/\|w\|` where :math:`\hat g` is the gradient at unit scale, with
mean square :math:`G^2 = E\|\hat g\|^2`. With x = ‖w‖², the predictions are scalar maps,
vectorized over parameters (:func:`predict_norm_trajectory`):

* **GD** (+ coupled weight decay λ): exactly
  :math:`x_{t+1} = (1-\eta\lambda)^2 x_t + \eta^2\|\hat g_t\|^2/x_t`; without decay
  :math:`x_t^2 \approx x_0^2 + 2\eta^2 G^2 t` (‖w‖ ∝ t^{1/4}); effective learning rate
  :math:`\eta/\|w\|^2`; equilibrium :math:`\|w^*\|^4 = \eta^2G^2/(1-(1-\eta\lambda)^2)
  \approx \eta G^2/(2\lambda)` with angular step :math:`\sqrt{2\eta\lambda}`.
* **Momentum** β (heavy ball, noise-dominated gradients): the same map with
  :math:`\eta_e = \eta/(1-\beta)`. Why: the velocity v keeps past gradients, which are
  orthogonal to *past* w, so :math:`\langle w_t, v_{t+1}\rangle = \beta(\langle w_{t-1}, v_t
  \rangle - \eta\|v_t\|^2)` settles at :math:`-\beta\eta V/(1-\beta)` and
  :math:`x_{t+1} - x_t = \eta^2 V (1+\beta)/(1-\beta) = \eta_e^2 G^2/x_t` with
  :math:`V = G^2/(x(1-\beta^2))`. Equilibrium angular step :math:`\sqrt{2\eta\lambda/(1+\beta)}`.
* **Adam / AdamW**: the step is normalized, :math:`\|\Delta w\|^2 \approx \eta^2 n r` with
  :math:`r = E[\hat m^2/\hat v] \approx (1-\beta_1)/(1+\beta_1)` for noise-dominated
  gradients, and the same momentum cross term multiplies the growth by
  :math:`(1+\beta_1)/(1-\beta_1)`, so :math:`x_{t+1} = (1-\eta\lambda)^2 x_t + \eta^2 n`
  whatever β₁: ‖w‖² grows *linearly* (‖w‖ ∝ t^{1/2}) until decoupled decay holds it at
  :math:`\|w^*\|^2 = \eta^2 n/(1-(1-\eta\lambda)^2) \approx \eta n/(2\lambda)`, angular step
  :math:`\sqrt{2\eta\lambda r}`. This is a drift *on average*: unlike GD and momentum, whose
  steps never shrink ‖w‖ without decay (claim ``S6.momentum-growth``), single Adam steps can
  (``S6.adam-counterexample``).

:func:`simulate_training` runs the same system (numpy) to check each prediction (claims
``T3.*``). :func:`predict_norm_growth_over_training` states the paper-level prediction for
‖H_K‖ that the torch experiments test. Tests: ``tests/test_toy_training.py``.
"""

from __future__ import annotations

import numpy as np

from blindspot.toy._validate import as_count, as_float, as_loops
from blindspot.toy.prediction import Prediction

OPTIMIZERS = ("gd", "momentum", "adam", "adamw")


def _optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return name


def effective_learning_rate(lr, norm) -> np.ndarray:
    r"""Angular step per unit unit-scale gradient under GD: :math:`\eta/\|w\|^2`."""
    return as_float("lr", lr, positive=True) / as_float("norm", norm, positive=True) ** 2


def adam_update_rms(beta1) -> np.ndarray:
    r""":math:`r = E[\hat m_i^2/\hat v_i] \approx (1-\beta_1)/(1+\beta_1)`: an EMA of i.i.d.
    noise keeps that fraction of its variance (noise-dominated gradients, v ≈ E g²)."""
    b = as_float("beta1", beta1, nonneg=True)
    if np.any(b >= 1):
        raise ValueError(f"beta1 must be in [0, 1), got {b.max():g}")
    return (1 - b) / (1 + b)


def predict_norm_trajectory(optimizer: str, steps: int, *, norm0, lr, grad_sq=None,
                            n: int | None = None, beta=0.9, weight_decay=0.0) -> Prediction:
    r"""Predicted ‖w_t‖ for t = 0..steps (shape ``(steps + 1, *params)``), plus the
    equilibrium norm and angular step when ``weight_decay`` > 0.

    ``grad_sq`` (G², mean squared gradient norm at unit scale) is needed by gd/momentum;
    ``n`` (number of coordinates) by adam/adamw, whose step size does not depend on G.
    ``beta`` is the momentum coefficient (momentum) or β₁ (adam/adamw). For gd/momentum
    the decay is coupled (L2 added to the gradient, as in ``torch.optim.SGD``); for adamw it
    is decoupled; plain adam ignores ``weight_decay``. Tests:
    ``tests/test_toy_training.py::test_predicted_norm_matches_simulation``.
    """
    opt = _optimizer(optimizer)
    steps = as_count("steps", steps, minimum=0)
    x0 = as_float("norm0", norm0, positive=True) ** 2
    lr = as_float("lr", lr, positive=True)
    lam = as_float("weight_decay", weight_decay, nonneg=True)
    beta = as_float("beta", beta, nonneg=True)
    if np.any(beta >= 1):
        raise ValueError(f"beta must be in [0, 1), got {beta.max():g}")
    if opt in ("gd", "momentum"):
        if grad_sq is None:
            raise ValueError(f"{opt} needs grad_sq (mean squared gradient norm at unit scale)")
        G2 = as_float("grad_sq", grad_sq, nonneg=True)
        eta = lr / (1 - beta) if opt == "momentum" else lr
        shrink, push = (1 - eta * lam) ** 2, eta**2 * G2
        formula = (r"x_{t+1}=(1-\eta_e\lambda)^2x_t+\eta_e^2G^2/x_t,\ \eta_e="
                   + (r"\eta/(1-\beta)" if opt == "momentum" else r"\eta"))
    else:
        if n is None:
            raise ValueError(f"{opt} needs n (the number of coordinates of w)")
        n = as_count("n", n)
        lam = lam if opt == "adamw" else np.zeros_like(lam)
        eta = lr
        shrink, push = (1 - lr * lam) ** 2, lr**2 * n
        formula = r"x_{t+1}=(1-\eta\lambda)^2x_t+\eta^2 n\ (\text{any }\beta_1)"
    if np.any(shrink > 1) or np.any(eta * lam >= 1):
        raise ValueError("lr * weight_decay must be < 1")
    shape = np.broadcast_shapes(np.shape(x0), np.shape(shrink), np.shape(push))
    x = np.empty((steps + 1, *shape))
    x[0] = x0
    for t in range(steps):
        x[t + 1] = shrink * x[t] + (push / x[t] if opt in ("gd", "momentum") else push)
    values = {"t": np.arange(steps + 1), "norm": np.sqrt(x), "effective_lr": eta / x}
    with np.errstate(divide="ignore"):
        decay = 1 - shrink
        if opt in ("gd", "momentum"):
            x_star = np.sqrt(push / decay)  # x*² (1 - shrink) = push
            values["exponent"] = 0.25
        else:
            x_star = push / decay
            values["exponent"] = 0.5
    values["equilibrium_norm"] = np.where(lam > 0, np.sqrt(x_star), np.inf)
    # angular step at equilibrium: ‖Δw‖/‖w*‖, with ‖Δw‖ the tangential step size
    factor = {"gd": 1.0, "momentum": 1 / (1 + beta), "adam": adam_update_rms(beta),
              "adamw": adam_update_rms(beta)}[opt]
    values["equilibrium_angular_step"] = np.where(lam > 0, np.sqrt(2 * lr * lam * factor), 0.0)
    return Prediction("norm_t", values, formula,
                      {"optimizer": opt, "lr": lr, "beta": beta, "weight_decay": lam})


def simulate_training(optimizer: str, steps: int, *, n: int = 64, lr=0.1, beta=0.9,
                      beta2=0.999, eps=1e-8, weight_decay=0.0, noise=1.0, signal=1.0,
                      norm0=1.0, n_runs: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    r"""Train :math:`L(w) = \mathrm{signal}\,(1 - \langle c, w/\|w\|\rangle) +
    \mathrm{noise}\,\langle\zeta_t, w/\|w\|\rangle` (ζ_t ~ N(0, I) fresh each step; the loss
    sees w only through its direction) with the named optimizer, ``n_runs`` runs at once.

    Returns ``norm`` (steps + 1, n_runs), ``grad_sq`` (steps, n_runs) the squared gradient
    at unit scale, ``angular`` (steps, n_runs) = ‖u_{t+1} − u_t‖, ``update_sq`` (steps,
    n_runs) = ‖Δw‖². Optimizer rules follow torch.optim (SGD with momentum and coupled
    decay; Adam with bias correction; AdamW with decoupled decay). A seed fixes the result
    bit for bit."""
    opt = _optimizer(optimizer)
    steps, n = as_count("steps", steps), as_count("n", n, minimum=2)
    n_runs = as_count("n_runs", n_runs)
    for name, v in (("lr", lr), ("noise", noise), ("signal", signal),
                    ("weight_decay", weight_decay)):
        as_float(name, v, nonneg=True)
    rng = np.random.default_rng(seed)
    c = np.zeros(n)
    c[0] = 1.0
    w = rng.standard_normal((n_runs, n))
    w *= norm0 / np.linalg.norm(w, axis=1, keepdims=True)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    norm = np.empty((steps + 1, n_runs))
    grad_sq = np.empty((steps, n_runs))
    angular = np.empty((steps, n_runs))
    update_sq = np.empty((steps, n_runs))
    norm[0] = norm0
    for t in range(steps):
        s = np.linalg.norm(w, axis=1, keepdims=True)  # (R, 1)
        u = w / s  # (R, n)
        direction_grad = -signal * c + noise * rng.standard_normal((n_runs, n))  # ∂f/∂u
        g_hat = direction_grad - np.sum(direction_grad * u, axis=1, keepdims=True) * u
        g = g_hat / s  # ∇L(w): tangential, ∝ 1/‖w‖
        grad_sq[t] = np.sum(g_hat**2, axis=1)
        w_old = w
        if opt == "gd":
            w = w - lr * (g + weight_decay * w)
        elif opt == "momentum":
            m = beta * m + g + weight_decay * w
            w = w - lr * m
        else:
            m = beta * m + (1 - beta) * g
            v = beta2 * v + (1 - beta2) * g**2
            step = (m / (1 - beta ** (t + 1))) / (np.sqrt(v / (1 - beta2 ** (t + 1))) + eps)
            w = (1 - lr * weight_decay) * w if opt == "adamw" else w
            w = w - lr * step
        update_sq[t] = np.sum((w - w_old) ** 2, axis=1)
        norm[t + 1] = np.linalg.norm(w, axis=1)
        angular[t] = np.linalg.norm(w / norm[t + 1][:, None] - u, axis=1)
    return {"norm": norm, "grad_sq": grad_sq, "angular": angular, "update_sq": update_sq}


def predict_norm_growth_over_training(steps, *, optimizer: str = "adamw", lr: float = 3e-4,
                                      weight_decay: float = 0.01, beta1: float = 0.9,
                                      n_params: int | None = None, norm0: float = 1.0,
                                      grad_sq: float | None = None) -> Prediction:
    r"""The toy's prediction for the norm of the stream-writing parameters, and under one more
    assumption for the final loop state's scale ‖H_K‖, over training.

    **Premise, with its hypotheses** (proofs/parameters.md, claim ``S6.param-invariance``):
    let P be every parameter that writes the residual stream (token and position embeddings,
    the output projection of every pre-norm sublayer; the post-norm gains of a sandwich
    block). If the readout is **untied**, every norm has **ε = 0**, the blocks are **pre-norm**
    with **bias-free** projections and there is **no inter-loop norm**, then every state is
    homogeneous of degree 1 in P and the per-loop CE is invariant under P → cP: P is a
    scale-invariant parameter group and the toy's norm drift (:func:`predict_norm_trajectory`)
    applies to ‖P‖. With the readout **tied** to the embedding (the paper's models, and
    ``LoopedLM``'s default) the premise fails: ⟨P, ∇_P L⟩ = Σ_k mean(E_p z_k − z_{k,y}), the
    raw readout's temperature force, and this prediction is then a hypothesis to test, not a
    consequence. Second, ‖H_K‖ = ‖P‖·φ(P/‖P‖) (``S6.state-vs-param``): ‖H_K‖ follows ‖P‖ only
    while the direction factor φ stays about constant, which training need not keep.

    **Prediction** (quantity: ‖P_t‖/‖P_0‖, which equals ‖H_K‖_t/‖H_K‖_0 when φ is constant):
    :math:`(\|P\|_t/\|P\|_0)^2 = x_t/x_0`, with x from the optimizer's map. Under Adam(W)
    with :math:`t \ll 1/(2\eta\lambda)`: :math:`\|P\|^2` is affine in t on average, so the
    log-log slope against t tends to **1/2** (GD/momentum: **1/4**); with weight decay it
    saturates at :math:`\|P^*\|^2 \approx \eta n/(2\lambda)`. A scale-visible readout (raw)
    or a norm penalty adds a radial force and the prediction becomes "bounded" instead.
    Tolerance for the experiments: the measured late-time slope (last half of training,
    log-log least squares against t) within **±0.15** of the predicted exponent; 0.15 covers
    the slope's drift from the asymptote while x_0 is not yet negligible and the
    non-orthogonal part of Adam's per-coordinate steps (checked in the toy by claim
    ``T3.paper-prediction``).

    Returns values ``t``, ``ratio`` (predicted ‖H_K‖_t/‖H_K‖_0), ``exponent``,
    ``tolerance``, ``local_exponent`` (d log ratio / d log t) and ``timescale`` 1/(2ηλ).
    Test: ``tests/test_toy_training.py::test_paper_prediction_exponent``.
    """
    t = as_loops("steps", steps)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("steps must be an increasing 1-D array of training steps (>= 2 entries)")
    opt = _optimizer(optimizer)
    if opt in ("adam", "adamw") and n_params is None:
        raise ValueError("adam/adamw need n_params: the size of the stream-writing parameter "
                         "group (embedding + block output projections)")
    pred = predict_norm_trajectory(opt, int(t[-1]), norm0=norm0, lr=lr, grad_sq=grad_sq,
                                   n=n_params, beta=beta1, weight_decay=weight_decay)
    norm = pred["norm"][t]
    ratio = norm / norm[0]
    local = np.full(t.shape, np.nan)  # d log ratio / d log t, undefined at t = 0
    pos = t > 0
    if pos.sum() >= 2:
        local[pos] = np.gradient(np.log(ratio[pos]), np.log(t[pos].astype(float)))
    lam = weight_decay if opt in ("gd", "momentum", "adamw") else 0.0
    return Prediction(
        "norm_H_K_over_training",
        {"t": t, "ratio": ratio, "exponent": pred["exponent"], "tolerance": 0.15,
         "local_exponent": local,
         "timescale": np.inf if lam == 0 else 1.0 / (2 * lr * lam),
         "equilibrium_norm": pred["equilibrium_norm"]},
        r"\|H_K\|_t=\|P_t\|\,\varphi(P_t/\|P_t\|),\ \|P_t\|^2=\|P_0\|^2+\eta^2 n\,t\ "
        r"(\text{Adam, untied},\ \varepsilon=0,\ t\ll 1/(2\eta\lambda))\Rightarrow "
        r"\|H_K\|\sim t^{1/2}\text{ while }\varphi\approx\text{const}",
        {"optimizer": opt, "lr": lr, "weight_decay": weight_decay, "beta1": beta1,
         "n_params": n_params, "norm0": norm0})


def growth_exponent(t, norms, *, last_fraction: float = 0.5) -> float:
    """Log-log least-squares slope of ``norms`` against ``t`` over the last fraction of the
    steps: the measured counterpart of ``predict_norm_growth_over_training()["exponent"]``."""
    t = as_float("t", t, ndim=1, positive=True)
    y = as_float("norms", norms, ndim=1, positive=True)
    if t.shape != y.shape or t.size < 4:
        raise ValueError(f"t and norms must be 1-D of equal length >= 4, got {t.shape}, {y.shape}")
    if not 0 < last_fraction <= 1:
        raise ValueError(f"last_fraction must be in (0, 1], got {last_fraction}")
    i = int(np.floor(t.size * (1 - last_fraction)))
    i = min(i, t.size - 2)
    return float(np.polyfit(np.log(t[i:]), np.log(y[i:]), 1)[0])


def compare_growth(t, norms, prediction: Prediction, *,
                   last_fraction: float = 0.5) -> dict[str, float | bool]:
    """Test a measured ‖H_K‖ training curve against
    :func:`predict_norm_growth_over_training`: the measured late-time log-log slope
    (:func:`growth_exponent`) must lie within ``prediction["tolerance"]`` of the predicted
    exponent. Returns ``measured``, ``predicted``, ``tolerance`` and ``passed``. Test:
    ``tests/test_toy_training.py::test_compare_growth_accepts_the_toy_and_rejects_bounded``."""
    measured = growth_exponent(t, norms, last_fraction=last_fraction)
    predicted = float(prediction["exponent"])
    tol = float(prediction["tolerance"])
    return {"measured": measured, "predicted": predicted, "tolerance": tol,
            "passed": bool(abs(measured - predicted) <= tol)}
