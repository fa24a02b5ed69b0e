"""Rows that break converters, derived from a model's own splits.

For every split feature: each threshold exactly, one float32 ulp and one float64 ulp either side,
NaN, 0.0, -0.0, +-1e-36, LightGBM's zero band edges, huge values and infinities; for categorical
features every category in a set, its neighbours, and invalid codes (negative, fractional, beyond
2**24 / 2**31, NaN). The rows mix these values across all features at once (so deep paths meet
boundary values at many nodes) and also plant single values into background rows.
"""

from __future__ import annotations

import numpy as np

from .ir import LIGHTGBM_ZERO_BAND, Ensemble

SPECIAL_VALUES = np.array(
    [
        np.nan,
        0.0,
        -0.0,
        1e-36,
        -1e-36,
        LIGHTGBM_ZERO_BAND,
        -LIGHTGBM_ZERO_BAND,
        np.nextafter(LIGHTGBM_ZERO_BAND, np.inf),
        -np.nextafter(LIGHTGBM_ZERO_BAND, np.inf),
        1.0,
        -1.0,
        1e30,
        -1e30,
        3.4e38,
        1e300,
        -1e300,
        np.inf,
        -np.inf,
    ]
)

INVALID_CATEGORIES = np.array(
    [-1.0, -0.5, -0.0, 0.5, 2.7, 16777215.0, 16777216.0, 2.0**25, 2.0**31, 2.0**31 - 1, np.inf, -np.inf, np.nan]
)


def _threshold_neighbours(t: np.ndarray) -> np.ndarray:
    t = t[np.isfinite(t)]
    if t.size == 0:
        return t
    t32 = t.astype(np.float32)
    vals = [
        t,
        np.nextafter(t, np.inf),
        np.nextafter(t, -np.inf),
        t32.astype(np.float64),
        np.nextafter(t32, np.float32(np.inf)).astype(np.float64),
        np.nextafter(t32, np.float32(-np.inf)).astype(np.float64),
    ]
    return np.concatenate(vals)


def feature_edge_values(ens: Ensemble) -> dict[int, np.ndarray]:
    """Edge values per feature used by any split (numerical and categorical) or read by a network."""
    internal = ens.left >= 0
    out: dict[int, np.ndarray] = {}
    used = np.unique(ens.feature[internal])
    if ens.network is not None:  # dense-network inputs: the special values
        used = np.union1d(used, ens.network.inputs)
    for f in used:
        nodes = np.flatnonzero(internal & (ens.feature == f))
        num = nodes[ens.categorical[nodes] == 0]
        cat = nodes[ens.categorical[nodes] != 0]
        parts = [SPECIAL_VALUES]
        if num.size:
            parts.append(_threshold_neighbours(np.unique(ens.threshold[num])))
        if cat.size:
            codes = np.unique(
                np.concatenate(
                    [ens.categories[ens.cat_begin[n] : ens.cat_end[n]] for n in cat]
                    + [np.zeros(0, np.int32)]
                )
            ).astype(np.float64)
            hi = codes.max() if codes.size else 0.0
            parts += [codes, codes + 1, codes + 0.5, codes - 0.5, np.array([hi + 1, hi + 32, hi + 33]), INVALID_CATEGORIES]
        vals = np.concatenate(parts)
        # unique by bit pattern so +0.0 / -0.0 and NaN survive
        _, idx = np.unique(vals.view(np.int64), return_index=True)
        out[int(f)] = vals[np.sort(idx)]
    return out


def _side_value(ens: Ensemble, n: int, go_left: bool) -> float | None:
    """A value that sends a row at node ``n`` to the requested side (None if none is known)."""
    if ens.categorical[n]:
        cats = ens.categories[ens.cat_begin[n] : ens.cat_end[n]]
        in_set_side_left = bool(ens.cat_left[n])
        want_in = go_left == in_set_side_left
        if want_in:
            return float(cats[0]) if cats.size else None
        hi = int(cats.max()) + 1 if cats.size else 0
        return float(hi)
    t = float(ens.threshold[n])
    if not np.isfinite(t):
        return None
    lt = ens.op[n] == 0
    if ens.input_cast == "float32":
        t32 = np.float32(t)  # nearest float32; step to the right side of t exactly
        le_t = t32 if float(t32) <= t else np.nextafter(t32, np.float32(-np.inf))  # largest f32 <= t
        gt_t = np.nextafter(le_t, np.float32(np.inf))  # smallest f32 > t
        lt_t = le_t if float(le_t) < t else np.nextafter(le_t, np.float32(-np.inf))
        ge_t = lt_t if float(lt_t) >= t else np.nextafter(lt_t, np.float32(np.inf))
        v = (lt_t if lt else le_t) if go_left else (ge_t if lt else gt_t)
        return float(v)
    if go_left:
        return float(np.nextafter(t, -np.inf)) if lt else t
    return t if lt else float(np.nextafter(t, np.inf))


def node_targeted_rows(ens: Ensemble, base: np.ndarray, *, max_rows: int, seed: int = 0) -> np.ndarray:
    """Rows steered down each tree to a split, with its feature exactly at / around the threshold.

    For a sampled internal node, every ancestor split gets a value sending the row towards that node
    (skipped if two ancestors need the same feature on incompatible sides); the node's own feature
    then takes the threshold, one float32 and one float64 ulp either side, and NaN. Mixed rows alone
    often never reach a deep node exactly at its threshold.
    """
    rng = np.random.default_rng(seed)
    internal = np.flatnonzero(ens.left >= 0)
    if internal.size == 0 or max_rows <= 0:
        return np.zeros((0, ens.n_features))
    parent = np.full(ens.n_nodes, -1, np.int64)
    went_left = np.zeros(ens.n_nodes, bool)
    parent[ens.left[internal]] = internal
    parent[ens.right[internal]] = internal
    went_left[ens.left[internal]] = True
    per_node = 7
    n_nodes = min(internal.size, max(1, max_rows // per_node))
    chosen = rng.choice(internal, n_nodes, replace=False) if n_nodes < internal.size else internal
    out = []
    for n in chosen:
        fixed: dict[int, float] = {}
        ok = True
        child = int(n)
        while parent[child] >= 0 and ok:
            p = int(parent[child])
            v = _side_value(ens, p, bool(went_left[child]))
            f = int(ens.feature[p])
            if v is None or (f in fixed and fixed[f] != v):
                ok = f in fixed  # keep the closer ancestor's value; the path may still hold
            else:
                fixed[f] = v
            child = p
        row = base[rng.integers(0, len(base))].copy()
        for f, v in fixed.items():
            row[f] = v
        f = int(ens.feature[n])
        if ens.categorical[n]:
            cats = ens.categories[ens.cat_begin[n] : ens.cat_end[n]].astype(np.float64)
            probes = np.concatenate([cats[:3], [cats.max() + 1 if cats.size else 0.0, -1.0, 0.5, np.nan]])
        else:
            t = float(ens.threshold[n])
            t32 = np.float32(t)
            probes = np.array(
                [
                    t,
                    np.nextafter(t, np.inf),
                    np.nextafter(t, -np.inf),
                    float(np.nextafter(t32, np.float32(np.inf))),
                    float(np.nextafter(t32, np.float32(-np.inf))),
                    float(t32),
                    np.nan,
                ]
            )
        block = np.repeat(row[None, :], probes.size, axis=0)
        block[:, f] = probes
        out.append(block)
    rows = np.vstack(out)
    return rows[:max_rows]


def edge_rows(
    ens: Ensemble,
    background: np.ndarray | None = None,
    *,
    max_rows: int = 20000,
    seed: int = 0,
) -> np.ndarray:
    """A float64 matrix of edge-case rows for ``ens`` (at most ``max_rows`` rows).

    ``background`` (rows of real data) is used as the base that single edge values are planted
    into; without it, rows are drawn from the model's own thresholds.
    """
    rng = np.random.default_rng(seed)
    values = feature_edge_values(ens)
    F = ens.n_features
    if not values:
        base = np.zeros((1, F)) if background is None else np.asarray(background, np.float64)[:1]
        return np.vstack([base, np.full((1, F), np.nan)])
    # 1) mixed rows: row i holds edge value i (cyclically, shuffled) of every feature
    longest = max(v.size for v in values.values())
    n_mixed = min(longest * 2, max_rows // 2)
    mixed = np.zeros((n_mixed, F))
    if background is not None and len(background):
        bg = np.asarray(background, np.float64)
        mixed[:] = bg[rng.integers(0, len(bg), n_mixed)]
    for f, v in values.items():
        mixed[:, f] = v[rng.permutation(np.resize(np.arange(v.size), n_mixed))]
    # 2) planted rows: one edge value in an otherwise ordinary row
    total = sum(v.size for v in values.values())
    n_planted = min(total, max_rows - n_mixed)
    if background is not None and len(background):
        bg = np.asarray(background, np.float64)
    else:
        # ordinary rows: each feature at a random one of its thresholds' neighbours
        bg = np.zeros((256, F))
        for f, v in values.items():
            finite = v[np.isfinite(v) & (np.abs(v) < 1e29)]
            bg[:, f] = rng.choice(finite, 256) if finite.size else 0.0
    pairs = [(f, x) for f, v in values.items() for x in v]
    if len(pairs) > n_planted:
        keep = rng.choice(len(pairs), n_planted, replace=False)
        pairs = [pairs[i] for i in np.sort(keep)]
    planted = bg[rng.integers(0, len(bg), len(pairs))].copy()
    for i, (f, x) in enumerate(pairs):
        planted[i, f] = x
    # 3) targeted rows: steered to a split, its feature at the threshold +- 1 ulp (a third of the budget)
    n_targeted = max(max_rows // 3, 1)
    n_mixed_planted = max_rows - n_targeted
    rows = np.vstack([mixed, planted])
    if rows.shape[0] > n_mixed_planted:
        rows = rows[rng.choice(rows.shape[0], n_mixed_planted, replace=False)]
    with np.errstate(over="ignore", invalid="ignore"):
        targeted = node_targeted_rows(ens, bg, max_rows=n_targeted, seed=seed)
    return np.vstack([rows, targeted])
