#!/usr/bin/env python3
"""hfc against its peers, side by side on the same data in one run, one thread each.

    python3 bench/run.py [--quick] [--hfc PATH] [--only NAME...]

See bench/README.md for what each case measures and where the peers come from.
"""
import os

# One thread everywhere, set before numpy loads its BLAS: the ratios compare algorithms,
# not how many cores each side happens to grab.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import importlib.util
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Install the peers on first use, so that a fresh machine needs nothing but Python and pip.
if any(importlib.util.find_spec(m) is None for m in ("numpy", "scipy", "sklearn", "tensorly")):
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "-r",
                           str(BENCH / "requirements.txt")])

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds
from sklearn.utils.extmath import randomized_svd

NUCLEAR = "norm2(U[:, i]) * norm2(V[:, i])"
SEPARABLE = {  # name -> the regularizer's product, and the closed form we expect it to have
    "l1*l1": ("norm1(U[:, i]) * norm1(V[:, i])", "entrywise"),
    "l1*l2": ("norm1(U[:, i]) * norm2(V[:, i])", "rows"),
    "l2*l1": ("norm2(U[:, i]) * norm1(V[:, i])", "cols"),
}


# ---------------------------------------------------------------- data (TARGETS.md recipe)

def low_rank(m, n, r, seed, noise=0.05):
    """L = A Bᵀ/√r with unit-variance Gaussian A, B (entries of L have unit variance)."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, r)), rng.standard_normal((n, r))
    return a @ b.T / math.sqrt(r) + noise * rng.standard_normal((m, n))


def slow_spectrum(m, n, seed, noise=1e-3):
    """σ_k = 100/k with random orthogonal factors: no gap anywhere, the hard case for
    first-order methods that the photograph in TARGETS.md stands for."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    q1, _ = np.linalg.qr(rng.standard_normal((m, k)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = 100.0 / np.arange(1, k + 1)
    return (q1 * s) @ q2.T + noise * rng.standard_normal((m, n))


def observe(y, p, seed):
    """Bernoulli(p) mask; rows/cols come out sorted row-major (np.nonzero), which the CSR
    built in soft_impute relies on."""
    rng = np.random.default_rng(seed + 1000)
    rows, cols = np.nonzero(rng.random(y.shape) < p)
    return rows, cols, y[rows, cols]


def write_mtx(path, shape, rows, cols, vals):
    # 1-based, %.17g so that hfc reads exactly the floats the peer sees.
    with open(path, "w") as f:
        f.write("%%%%MatrixMarket matrix coordinate real general\n%d %d %d\n"
                % (shape[0], shape[1], len(vals)))
        np.savetxt(f, np.column_stack([rows + 1, cols + 1, vals]), fmt="%d %d %.17g")


def sv(y):
    return np.linalg.svd(y, compute_uv=False)


# ---------------------------------------------------------------- running hfc

class Hfc:
    def __init__(self, binary, work, tol, repeats, timeout):
        self.binary, self.work, self.tol = binary, work, tol
        self.repeats, self.timeout, self.count = repeats, timeout, 0

    def model(self, name, text):
        path = self.work / f"{name}.hfm"
        path.write_text(text)
        return path

    def run(self, model, data, lam, tol=None, repeats=None):
        """Best wall time of the whole process (start-up, data read and JIT included: what a
        user waits for) over the repeats; the report of the last run."""
        self.count += 1
        out = self.work / f"out{self.count}"
        cmd = [str(self.binary), "run", str(model), "--data", f"Y={data}",
               "--set", f"lambda={float(lam)!r}", "--tol", repr(float(tol or self.tol)),
               "--out", str(out), "--json", "--quiet", "--color", "never"]
        best, report = math.inf, None
        for _ in range(repeats or self.repeats):
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return {"status": "timeout", "seconds": self.timeout, "cmd": cmd}
            elapsed = time.perf_counter() - t0
            # 3: stopped at an iteration or rank limit, results still written.
            if p.returncode not in (0, 3):
                return {"status": f"exit {p.returncode}", "stderr": p.stderr[-2000:], "cmd": cmd}
            best = min(best, elapsed)
            report = json.loads(p.stdout)
        history = report.pop("history", [])
        report["history_length"] = len(history)
        return {"status": "ok", "seconds": best, "report": report, "cmd": cmd}


def describe(h):
    """One line about an hfc run: time, phases, iterations, stop and gap."""
    if h["status"] != "ok":
        return f"hfc {h['status']}" + (f" after {h['seconds']:.0f} s" if "seconds" in h
                                      else ": " + h.get("stderr", "").strip()[-500:])
    r = h["report"]
    jit = (r.get("backend_info") or {}).get("compile_seconds")
    gap = r["relative_gap"]
    return (f"hfc {h['seconds']:.3f} s (report {r['seconds']:.3f}: descent "
            f"{r['seconds_descent']:.3f}, polar {r['seconds_polar']:.3f}"
            + (f", jit {jit:.3f}" if jit is not None else "") + ") "
            f"{r['iterations']} it + {r['outer_iterations']} outer, rank {r['rank']}, "
            f"stop {r['stop']}, gap {gap if gap is None else f'{gap:.1e}'}, {r['certificate']}")


def check_lambda_max(h, ours, what):
    if h["status"] == "ok":
        theirs = h["report"]["lambda_max"]
        if abs(theirs - ours) > 1e-6 * abs(ours):
            print(f"  WARNING {what}: hfc's lambda_max {theirs!r} vs ours {ours!r} "
                  f"(relative {abs(theirs - ours) / abs(ours):.1e})")


def certified(h, tol):
    r = h.get("report")
    return bool(r and r["stop"] == "optimal" and r["certificate"] == "exact"
                and r["relative_gap"] is not None and r["relative_gap"] <= tol)


def secs(x):
    return "-" if x is None else f"{x:.4f}" if x >= 1e-3 else f"{x:.1e}"


def rel(a, b):
    return (a - b) / abs(b)


def best_of(n, f):
    best = math.inf
    for _ in range(n):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------- peers

def svt_value(s, lam):
    """½‖Y − S_λ(Y)‖² + λ‖S_λ(Y)‖_* from the singular values of Y (the exact optimum)."""
    return float(np.sum(np.where(s > lam, lam * s - 0.5 * lam * lam, 0.5 * s * s)))


def svd_threshold(y, lam):
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    k = int(np.sum(s > lam))
    x = (u[:, :k] * (s[:k] - lam)) @ vt[:k]
    return x, s[:k] - lam


def rsvd_threshold(y, lam, k):
    u, s, vt = randomized_svd(y, n_components=k, random_state=0)
    keep = s > lam
    return (u[:, keep] * (s[keep] - lam)) @ vt[keep], s[keep] - lam


def at_observed(left, right, rows, cols, chunk=1 << 17):
    """(left rightᵀ) at the observed entries, in chunks to bound the temporaries."""
    out = np.empty(len(rows))
    for s in range(0, len(rows), chunk):
        e = s + chunk
        out[s:e] = np.einsum("ij,ij->i", left[rows[s:e]], right[cols[s:e]])
    return out


def soft_impute_one(S, rows, cols, vals, lam, rank, warm, tol, maxit, rng):
    """softImpute-ALS at one λ (Hastie, Mazumder, Lee & Zadeh 2015, Algorithm 3.1), as the
    R package's simpute.als does it: X = U diag(d) Vᵀ with U, V orthonormal, each half-step
    a ridge solve on P_Ω(Y) + P_Ω⊥(X) = S + X with S sparse, so nothing m x n is formed."""
    m, n = S.shape
    u, d, v = warm
    # Pad the warm start to the rank cap with fresh random directions (d = its smallest, V = 0),
    # as the R package does: columns that died at a larger λ must be able to come back.
    k = len(d)
    if k < rank:
        extra = rng.standard_normal((m, rank - k))
        extra -= u @ (u.T @ extra)
        u = np.hstack([u, np.linalg.qr(extra)[0]])
        d = np.concatenate([d, np.full(rank - k, d[-1] if k else 1.0)])
        v = np.hstack([v, np.zeros((n, rank - k))])
    it = 0
    for it in range(1, maxit + 1):
        u0, d0, v0 = u, d, v
        S.data[:] = vals - at_observed(u * d, v, rows, cols)
        b = (S.T @ u + v * d) * (d / (d + lam))
        v, d, rt = np.linalg.svd(b, full_matrices=False)
        u = u @ rt.T
        S.data[:] = vals - at_observed(u * d, v, rows, cols)
        a = (S @ v + u * d) * (d / (d + lam))
        u, d, rt = np.linalg.svd(a, full_matrices=False)
        v = v @ rt.T
        # ‖X0 − X‖²/‖X0‖², from the factors (the R package's convergence test).
        cross = np.sum((d0[:, None] * (u0.T @ u) * d[None, :]) * (v0.T @ v))
        old = np.sum(d0 ** 2)
        if old > 0 and (old + np.sum(d ** 2) - 2 * cross) / old < tol:
            break
    # Step 4: one SVD of (S + X) V, then the threshold: the nuclear-norm solution's factors.
    S.data[:] = vals - at_observed(u * d, v, rows, cols)
    u, s, rt = np.linalg.svd(S @ v + u * d, full_matrices=False)
    keep = s > lam
    return u[:, keep], s[keep] - lam, (v @ rt.T)[:, keep], it


def soft_impute(shape, rows, cols, vals, lam, lam_max, rank, path=10, tol=1e-5, maxit=100):
    """softImpute-ALS down a path of `path` λs from λ_max to λ, each warm-started from the
    last; the rank cap doubles (and that λ is solved again) when a solution reaches it.
    Returns the solution's factors, the iterations in all and the final cap."""
    m, n = shape
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))])
    S = sp.csr_matrix((vals.copy(), cols, indptr), shape=shape)
    rng = np.random.default_rng(0)
    warm = (np.zeros((m, 0)), np.zeros(0), np.zeros((n, 0)))
    iters = 0
    for lam_k in np.geomspace(lam_max, lam, path + 1)[1:]:
        while True:
            warm = soft_impute_one(S, rows, cols, vals, lam_k, rank, warm, tol, maxit, rng)
            iters += warm[3]
            warm = warm[:3]
            if len(warm[1]) < rank or rank >= min(m, n):
                break
            rank = min(2 * rank, min(m, n))
    return (*warm, iters, rank)


def completion_value(u, s, v, rows, cols, vals, lam):
    r = vals - at_observed(u * s, v, rows, cols)
    return 0.5 * float(r @ r) + lam * float(s.sum())


def separable_closed_form(y, lam, kind):
    """The prox of the induced norm at Y and the objective there."""
    if kind == "entrywise":
        x = np.sign(y) * np.maximum(np.abs(y) - lam, 0.0)
        return x, 0.5 * np.sum((y - x) ** 2) + lam * np.abs(x).sum()
    axis = 1 if kind == "rows" else 0
    norms = np.linalg.norm(y, axis=axis, keepdims=True)
    x = y * np.maximum(0.0, 1.0 - lam / np.maximum(norms, 1e-300))
    return x, 0.5 * np.sum((y - x) ** 2) + lam * np.linalg.norm(x, axis=axis).sum()


def separable_lambda_max(y, kind):
    if kind == "entrywise":
        return float(np.abs(y).max())
    return float(np.linalg.norm(y, axis=1 if kind == "rows" else 0).max())


# ---------------------------------------------------------------- cases

ROWS = []  # the summary table


def row(case, h, peer, peer_s, err, tol):
    ratio = h["seconds"] / peer_s if h["status"] == "ok" and peer_s else None
    ROWS.append({"case": case, "hfc_s": h.get("seconds"), "hfc_status": h["status"],
                 "peer": peer, "peer_s": peer_s, "ratio": ratio, "rel_error": err,
                 "certified": certified(h, tol), "hfc": h.get("report")})
    if peer_s is not None:
        print(f"  {peer:<18} {secs(peer_s):>8} s   hfc/peer {'-' if ratio is None else f'{ratio:8.1f}'}"
              f"   rel. error {'-' if err is None else f'{err:+.1e}'}")


def case_lowrank(hfc, args, selected):
    model = hfc.model("lowrank", (ROOT / "stdlib/hfm/lowrank.hfm").read_text())
    for name, make, r, rsvd in [
        ("lowrank/1000x500-r20", lambda: low_rank(1000, 500, 20, 1), 20, True),
        ("lowrank/4000x2000-r30", lambda: low_rank(4000, 2000, 30, 2), 30, True),
        ("lowrank/slow-427x640-r50", lambda: slow_spectrum(427, 640, 3), 50, False),
    ]:
        if not selected(name):
            continue
        y = make()
        s = sv(y)
        lam = math.sqrt(s[r - 1] * s[r])  # between σ_r and σ_{r+1}: the solution has rank r
        data = hfc.work / f"{name.replace('/', '_')}.npy"
        np.save(data, y)
        print(f"\n[{name}] λ = {lam:.6g} (σ_r {s[r - 1]:.6g}, σ_r+1 {s[r]:.6g}); "
              f"the exact solution has rank {int(np.sum(s > lam))}")
        h = hfc.run(model, data, lam)
        print("  " + describe(h))
        check_lambda_max(h, float(s[0]), name)
        exact = svt_value(s, lam)
        err = rel(h["report"]["objective"], exact) if h["status"] == "ok" else None
        t, _ = best_of(hfc.repeats, lambda: svd_threshold(y, lam))
        row(name, h, "svd+threshold", t, err, args.tol)  # err: hfc's objective vs the exact
        if rsvd:
            t, (x, st) = best_of(hfc.repeats, lambda: rsvd_threshold(y, lam, r + 10))
            value = 0.5 * np.sum((y - x) ** 2) + lam * st.sum()
            row(name, h, "randomized_svd", t, err, args.tol)
            print(f"  (randomized_svd's own objective vs exact {rel(value, exact):+.1e})")


def case_completion(hfc, args, selected):
    model = hfc.model("completion", (ROOT / "stdlib/hfm/completion.hfm").read_text())
    cases = [(1000, 500, 20, 0.05, False), (1000, 500, 20, 0.20, False),
             (2000, 1000, 20, 0.05, False), (2000, 1000, 20, 0.20, False),
             (4000, 2000, 30, 0.20, True)]
    for seed, (m, n, r, p, slow) in enumerate(cases, start=10):
        name = f"completion/{m}x{n}-r{r}-{int(p * 100)}%"
        if not selected(name) or (slow and args.quick):
            continue
        rows, cols, vals = observe(low_rank(m, n, r, seed), p, seed)
        lam_max = float(svds(sp.csr_matrix((vals, (rows, cols)), shape=(m, n)), k=1,
                             return_singular_vectors=False)[0])
        lam = args.fraction * lam_max
        data = hfc.work / f"{name.replace('/', '_').replace('%', 'pct')}.mtx"
        write_mtx(data, (m, n), rows, cols, vals)
        print(f"\n[{name}{' (slow)' if slow else ''}] {len(vals)} observed, "
              f"λ = {args.fraction} λ_max = {lam:.6g}")
        h = hfc.run(model, data, lam)
        print("  " + describe(h))
        check_lambda_max(h, lam_max, name)
        t, (u, s, v, iters, cap) = best_of(hfc.repeats, lambda: soft_impute(
            (m, n), rows, cols, vals, lam, lam_max, r + 20))
        peer = completion_value(u, s, v, rows, cols, vals, lam)
        print(f"  softImpute-ALS: {iters} iterations over a 10-λ path, rank {int(np.sum(s > 0))}"
              f" (rank cap {cap}), objective {peer:.10g}")
        if h["status"] == "ok":
            hobj = h["report"]["objective"]
            print(f"  hfc objective {hobj:.10g}; softImpute's relative suboptimality against "
                  f"it {rel(peer, hobj):+.1e}")
        # The error column for completion is the peer's against hfc's (no closed form).
        row(name, h, "softImpute-ALS", t,
            rel(peer, h["report"]["objective"]) if h["status"] == "ok" else None, args.tol)


def case_separable(hfc, args, selected):
    y = low_rank(36, 24, 4, 20)
    data = hfc.work / "sep.npy"
    np.save(data, y)
    lowrank = (ROOT / "stdlib/hfm/lowrank.hfm").read_text()
    for key, (reg, kind) in SEPARABLE.items():
        model = hfc.model(f"sep_{key.replace('*', '')}", lowrank.replace(NUCLEAR, reg))
        lam_max = separable_lambda_max(y, kind)
        for frac in (0.05, 0.3, 0.8):
            name = f"separable/{key}@{frac}"
            if not selected(name):
                continue
            lam = frac * lam_max
            print(f"\n[{name}] 36x24, λ = {lam:.6g}, expected closed form: {kind}")
            h = hfc.run(model, data, lam)
            print("  " + describe(h))
            check_lambda_max(h, lam_max, name)
            t, (_, closed) = best_of(max(hfc.repeats, 3), lambda: separable_closed_form(y, lam, kind))
            err = rel(h["report"]["objective"], closed) if h["status"] == "ok" else None
            if h["status"] == "ok":
                r = h["report"]
                print(f"  iterations + outer = {r['iterations'] + r['outer_iterations']} (goal < 100)")
                if kind != "entrywise":  # say which group side hfc's optimum matches
                    for side in ("rows", "cols"):
                        v = separable_closed_form(y, lam, side)[1]
                        print(f"  vs {side}-group closed form {v:.12g}: {rel(r['objective'], v):+.1e}")
            row(name, h, f"numpy {kind}", t, err, args.tol)


def case_sweep(hfc, args, selected):
    """Every exact-polar model to a relative gap of 1e-10, from near 0 to near λ_max."""
    tol = 1e-10
    dense = low_rank(100, 80, 5, 30)
    sep = low_rank(36, 24, 4, 20)
    np.save(hfc.work / "sweep_dense.npy", dense)
    np.save(hfc.work / "sweep_sep.npy", sep)
    rows, cols, vals = observe(low_rank(100, 80, 5, 31), 0.3, 31)
    write_mtx(hfc.work / "sweep_comp.mtx", (100, 80), rows, cols, vals)
    lowrank = (ROOT / "stdlib/hfm/lowrank.hfm").read_text()
    s = sv(dense)
    comp_max = float(np.linalg.norm(sp.csr_matrix((vals, (rows, cols)), shape=(100, 80)).toarray(), 2))
    models = [("nuclear", hfc.model("sw_nuclear", lowrank), "sweep_dense.npy", s[0],
               lambda lam: svt_value(s, lam))]
    for key, (reg, kind) in SEPARABLE.items():
        models.append((key, hfc.model(f"sw_{key.replace('*', '')}", lowrank.replace(NUCLEAR, reg)),
                       "sweep_sep.npy", separable_lambda_max(sep, kind),
                       lambda lam, kind=kind: separable_closed_form(sep, lam, kind)[1]))
    models.append(("completion", hfc.model("sw_completion",
                                           (ROOT / "stdlib/hfm/completion.hfm").read_text()),
                   "sweep_comp.mtx", comp_max, None))
    runs = [(f"sweep/{m[0]}@{frac}", frac, *m) for m in models for frac in (0.01, 0.05, 0.3, 0.8)]
    runs = [r for r in runs if selected(r[0])]
    if runs:
        print("\n[sweep] --tol 1e-10: nuclear 100x80, separable 36x24, completion 100x80 30%")
    for name, frac, key, model, data, lam_max, closed in runs:
        lam = frac * lam_max
        h = hfc.run(model, hfc.work / data, lam, tol=tol, repeats=1)
        check_lambda_max(h, lam_max, name)
        err = None
        if h["status"] == "ok" and closed:
            err = rel(h["report"]["objective"], closed(lam))
        r = h.get("report") or {}
        if "stderr" in h:
            print("  " + describe(h))
        gap = r.get("relative_gap")
        print(f"  {name:<24} {r['stop'] if r else h['status']:<16} "
              f"gap {'-' if gap is None else f'{gap:.1e}':<8} "
              f"certified {'yes' if certified(h, tol) else 'NO ':<3} "
              f"vs closed form {'-' if err is None else f'{err:+.1e}'}  "
              f"{h.get('seconds', 0):.3f} s"
              + (f", {r['iterations']} it + {r['outer_iterations']} outer" if r else ""))
        row(name, h, "-", None, err, tol)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat, 120 s timeout, skip the cases marked slow")
    ap.add_argument("--hfc", default=str(ROOT / "target/release/hfc"), help="the hfc binary")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="run the cases whose name contains one of these (lowrank, completion/1000x500, separable, sweep, ...)")
    ap.add_argument("--tol", type=float, default=1e-6, help="hfc's --tol for the timed cases")
    ap.add_argument("--fraction", type=float, default=0.1, help="completion's λ / λ_max")
    ap.add_argument("--timeout", type=float, help="seconds per hfc run (600; 120 with --quick)")
    ap.add_argument("--repeats", type=int, help="best of N (3; 1 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    timeout = args.timeout or (120 if args.quick else 600)
    selected = lambda name: not args.only or any(o in name for o in args.only)

    work = Path(tempfile.mkdtemp(prefix="hfc-bench-"))
    # A copy, so that a rebuild of target/release during the run changes nothing.
    binary = work / "hfc"
    shutil.copy2(args.hfc, binary)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    from threadpoolctl import threadpool_info  # comes with scikit-learn
    blas = ", ".join(f"{p['internal_api']} {p['num_threads']} thread(s)" for p in threadpool_info())
    print(f"hfc {args.hfc} ({version}); numpy {np.__version__} ({blas}); "
          f"tol {args.tol:g}; best of {repeats}; timeout {timeout:g} s; folder {work}")
    hfc = Hfc(binary, work, args.tol, repeats, timeout)
    try:
        for case in (case_lowrank, case_completion, case_separable, case_sweep):
            case(hfc, args, selected)
    finally:
        summary()
        results = BENCH / "results"
        results.mkdir(exist_ok=True)
        (results / "last.json").write_text(json.dumps({
            "argv": sys.argv, "hfc": args.hfc, "hfc_version": version, "tol": args.tol,
            "repeats": repeats, "timeout": timeout, "numpy": np.__version__,
            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": ROWS}, indent=1, default=str))
        print(f"\nwrote {results / 'last.json'}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def summary():
    print("\n" + "=" * 100)
    print(f"{'case':<32} {'hfc s':>9} {'peer':<16} {'peer s':>9} {'hfc/peer':>9} "
          f"{'rel. error':>11}  certified")
    for r in ROWS:
        hs = f"{r['hfc_s']:.3f}" if r["hfc_status"] == "ok" else r["hfc_status"]
        ps = secs(r["peer_s"])
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.1f}"
        err = "-" if r["rel_error"] is None else f"{r['rel_error']:+.1e}"
        print(f"{r['case']:<32} {hs:>9} {r['peer']:<16} {ps:>9} {ratio:>9} {err:>11}  "
              f"{'yes' if r['certified'] else 'no'}")
    print("rel. error: hfc's objective against the exact optimum (low rank, separable, sweep); "
          "for completion, the peer's against hfc's (its suboptimality).")


if __name__ == "__main__":
    main()
