"""Reference fits for kernel/core/tests/oversight_parity.rs (gao_fits_match_scipy_curve_fit): Gao et al. (2022)'s functional forms
fitted with scipy's `curve_fit` on seeded points.

    best-of-n   R(d) = d (alpha - beta d)
    RL          R(d) = d (alpha - beta log d)        (d log d = 0 at d = 0)

For each case it writes the points, the fitted coefficients, their standard errors (the square
roots of pcov's diagonal: curve_fit's default absolute_sigma=False scales (JᵀJ)⁻¹ by RSS/(n − 2))
and 95% intervals (estimate ± t(0.975, n − 2) · se, scipy.stats.t) to
tests/parity/fixtures/overopt.json.

Besides the synthetic cases, it fits the points the over-optimisation workbook measured on the
built-in task (`sandwich run workbooks/overopt.lua DIR small`, its bon.csv and rl.csv copied to
tests/parity/fixtures/overopt_workbook_{bon,rl}.csv): the same points our fit is checked on.

    pip install scipy numpy
    python tests/parity/make_overopt_fixtures.py
"""

import json
import pathlib

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import t as student_t

OUT = pathlib.Path(__file__).parent / "fixtures" / "overopt.json"


def bon(d, alpha, beta):
    return d * (alpha - beta * d)


def rl(d, alpha, beta):
    safe = np.where(d > 0, d, 1.0)
    return d * (alpha - beta * np.log(safe))


FORMS = {"bon": bon, "rl": rl}


def case(name, form, d, noise, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    d = np.asarray(d, dtype=float)
    r = FORMS[form](d, alpha, beta) + rng.normal(0, noise, len(d))
    return fitted(name, form, d, r)


def fitted(name, form, d, r):
    popt, pcov = curve_fit(FORMS[form], d, r, p0=[1.0, 1.0])
    se = np.sqrt(np.diag(pcov))
    q = student_t.ppf(0.975, len(d) - 2)
    return {
        "name": name,
        "form": form,
        "d": d.tolist(),
        "reward": r.tolist(),
        "alpha": popt[0],
        "beta": popt[1],
        "alpha_se": se[0],
        "beta_se": se[1],
        "alpha_ci": [popt[0] - q * se[0], popt[0] + q * se[0]],
        "beta_ci": [popt[1] - q * se[1], popt[1] + q * se[1]],
        "rss": float(np.sum((r - FORMS[form](d, *popt)) ** 2)),
    }


def main():
    # best-of-n: d = sqrt(log n - (n - 1) / n) for n = 1, 2, 4, ..., 1024.
    ns = 2.0 ** np.arange(11)
    d_bon = np.sqrt(np.log(ns) - (ns - 1) / ns)
    cases = [
        case("bon_peaked", "bon", d_bon, 0.02, 1.0, 0.45, 1),
        case("bon_rising", "bon", d_bon, 0.05, 0.6, 0.05, 2),
        case("rl_peaked", "rl", np.linspace(0.0, 6.0, 13), 0.03, 0.8, 0.5, 3),
        case("rl_irregular", "rl", [0.1, 0.3, 0.35, 0.9, 1.7, 2.2, 3.9, 5.0], 0.1, 0.5, 0.2, 4),
    ]
    for form in ["bon", "rl"]:
        points = OUT.parent / f"overopt_workbook_{form}.csv"
        if points.exists():
            cols = points.read_text().splitlines()
            head = cols[0].split(",")
            rows = [line.split(",") for line in cols[1:] if line]
            d = np.array([float(r[head.index("d")]) for r in rows])
            gain = np.array([float(r[head.index("gold_gain")]) for r in rows])
            cases.append(fitted(f"workbook_{form}", form, d, gain))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
