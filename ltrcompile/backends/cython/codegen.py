"""Generate the sources of one compiled model: header, driver, tree units and the Cython wrapper.

Templates (``*.j2``) hold the fixed skeleton; tree code is built as plain strings (fast for tens of
thousands of nodes). Only numbers and identifiers made up here reach the generated source: feature
names, model ids and other model strings stay in the manifest and the IR JSON.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...ir import Ensemble
from .contexts import (
    CommonCtx,
    DataDrivenCtx,
    DriverCtx,
    IfelseCtx,
    LinearLeafCtx,
    TablesCtx,
    render_context,
)
from .literals import Tables, c_double, c_float, c_float_array, c_int_array, c_literal
from .lowering import LoweredModel, lower, used_features
from .nodetable import RULE_SUFFIX
from .transforms_c import transform_body
from .treegen import Unit, partition, unit_source

#: bump when generated code changes meaning or layout (part of the artifact's content address)
CODEGEN_VERSION = "1"

STRATEGIES = ("ifelse", "datadriven")


@dataclass(frozen=True)
class Tuning:
    """Knobs that shape generated code (part of the content address)."""

    row_block: int = 64  # rows per row block
    block_nodes: int = 1024  # internal nodes per tree block (straight-line)
    max_block_trees: int = 64
    unit_nodes: int = 4000  # internal nodes per translation unit (straight-line)
    dd_block_trees: int = 32  # trees per block (data-driven)
    dd_lanes: int = 16  # walks interleaved by the branch-free kernel
    dd_one_lanes: int = 16  # walks interleaved for one row (predict_one)
    dd_aos: bool = False  # threshold and packed child/feature side by side (one cache line per node)
    dd_early_exit: bool | None = None  # stop a lockstep walk once every lane stands on a leaf (None: by shape)
    dd_incbin_min: int = 16384  # tables with at least this many entries become .incbin binaries
    parallel_min_rows: int = 256  # below this, n_threads is ignored
    isa: str = "portable"  # instruction-set level of the generated units (see isa.py)
    # optimisation level of the straight-line tree units: -O1 halves their compile time (gcc 12,
    # lgb-cat-200x31: 9.9 -> 3.9 s CPU for a 4,000-node unit; most of -O2 is RTL passes over the
    # long goto chains) and scored the same within noise (side by side, loaded 2-core box)
    tree_opt: str = "-O1"

    def to_dict(self) -> dict[str, int | bool | str | None]:
        return dict(self.__dict__)


#: "auto" picks straight-line code only for small models whose trees mostly cannot take the
#: branch-free walk (categorical sets, LightGBM zero-default nodes that matter)
IFELSE_MAX_NODES = 20_000


#: early exit pays when the deepest leaf is this much deeper than the mean leaf (mean over trees)
UNBALANCED_RATIO = 1.3

#: "auto" also picks straight-line code for small models of unbalanced (LightGBM leaf-wise) trees:
#: their paths are short and their branches predictable, while the lockstep walk pays for the deepest
#: lane. Measured side by side (CPU time, loaded 2-core box, 4 rounds): lgb-reg-100x31 (3,000 nodes,
#: unbalanced) ifelse 0.85-1.2 ms vs datadriven 1.1-3.3 ms at batch 1,000; xgb-rank-100 (3,932
#: nodes, balanced depth-6 trees) datadriven 0.7-1.3 ms vs ifelse 1.8-2.3 ms.
IFELSE_SMALL_NODES = 5_000


def unbalanced(lm: LoweredModel) -> bool:
    """Trees whose deepest leaf is far below the typical one (LightGBM's leaf-wise growth): most walks
    end long before the deepest leaf, so the lockstep walks check for "every lane at a leaf".
    Measured (one run, loaded 2-core EPYC): 1.2-1.4x on LightGBM 31/64-leaf models, 0.97x on
    XGBoost depth-6 rankers (which this rule leaves alone)."""
    if lm.n_trees == 0:
        return False
    depth = np.zeros(lm.n_nodes, np.int64)
    frontier = lm.tree_offset[:-1]
    while frontier.size:
        frontier = frontier[lm.left[frontier] >= 0]
        kids = np.concatenate([lm.left[frontier], lm.right[frontier]])
        depth[kids] = np.concatenate([depth[frontier], depth[frontier]]) + 1
        frontier = kids
    leaf = lm.left < 0
    mean_leaf = np.bincount(lm.tree_of_node[leaf], depth[leaf], lm.n_trees) / np.maximum(1, np.diff(lm.leaf_base))
    return bool(lm.depth.mean() > UNBALANCED_RATIO * max(1.0, float(mean_leaf.mean())))


def choose_strategy(ens: Ensemble, strategy: str) -> str:
    """``"datadriven"`` unless the model is small and mostly needs per-row branching anyway, or is
    small with unbalanced trees (:data:`IFELSE_SMALL_NODES`).

    Measured on real rankers (benchmarks/bench_compiled.py), the branch-free data-driven walk beats
    straight-line code by 2-4x at batch and single-row scoring: tree branches on real features are
    hard to predict, and straight-line code pays a misprediction per level. It also compiles in a
    couple of seconds whatever the model size. Straight-line code wins where the data-driven
    strategy falls back to its branching generic walk (categorical-heavy models).
    """
    if ens.network is not None:  # dense networks have one kernel of their own (network.py)
        if strategy not in ("auto", "network"):
            raise ValueError(f"strategy {strategy!r} does not apply to a dense network; use 'auto'")
        return "network"
    if strategy == "auto":
        internal = ens.left >= 0
        n_internal = int(np.count_nonzero(internal))
        if n_internal == 0 or n_internal > IFELSE_MAX_NODES:
            return "datadriven"
        lm = lower(ens)
        if n_internal <= IFELSE_SMALL_NODES and unbalanced(lm):
            return "ifelse"
        generic = int((~lm.fast_tree).sum())
        return "ifelse" if generic * 2 > ens.n_trees else "datadriven"
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {('auto',) + STRATEGIES}")
    return strategy


_GENERATOR_MODULES = (
    "codegen.py", "contexts.py", "isa.py", "lowering.py", "treegen.py", "nodetable.py", "transforms_c.py",
    "literals.py", "network.py",
)


def generator_fingerprint() -> str:
    """Hash of the templates and generator sources: any change to them changes module names."""
    import hashlib

    h = hashlib.sha256(CODEGEN_VERSION.encode())
    here = Path(__file__).resolve().parent
    for name in _GENERATOR_MODULES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    for d in template_dirs()[:1]:
        for p in sorted(d.glob("*.j2")):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def template_dirs() -> list[Path]:
    """``ltrcompile/templates`` (installed wheels) first, then the repository's ``templates/``."""
    pkg = Path(__file__).resolve().parents[2]
    return [p for p in (pkg / "templates", pkg.parent / "templates") if p.is_dir()]


def _env() -> Any:
    import jinja2

    dirs = template_dirs()
    if not dirs:
        raise FileNotFoundError(
            "ltrcompile's code templates were not found (looked in ltrcompile/templates and "
            "<repo>/templates); reinstall ltrcompile"
        )
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Sources:
    """Generated files (name -> text) and what the build needs to know about them."""

    module: str
    strategy: str
    files: dict[str, str] = field(default_factory=dict)
    units: list[str] = field(default_factory=list)  # C files to compile
    unit_weights: dict[str, int] = field(default_factory=dict)  # for scheduling (bigger first)
    binaries: dict[str, bytes] = field(default_factory=dict)  # tables the assembler includes
    unit_flags: dict[str, list[str]] = field(default_factory=dict)  # extra flags per C file


def _base_acc(lm: LoweredModel) -> str:
    """Initial accumulators: the base score (bag 0) or 0, already added in the model's way."""
    if lm.acc_type != "ltrc_kahan":
        return c_float_array(lm.base_acc, lm.acc_type)
    states = []
    for v in lm.base_acc.tolist():
        # Kahan state after adding v to (s=0, c=0, simple=0), with the same double operations
        y = v - 0.0
        t = 0.0 + y
        c = (t - 0.0) - y
        states.append(f"{{{c_double(t)}, {c_double(c)}, {c_double(0.0 + v)}}}")
    return ",\n".join(states)


def _linear_terms(lm: LoweredModel, fmap: np.ndarray) -> str:
    """Linear terms in order; ``fmap`` maps features to the columns the driver reads."""
    lines: list[str] = []
    f64 = lm.acc_mode not in ("float32", "float32_fused")
    band = lm.band > 0
    for o, f, w in zip(lm.linear_output.tolist(), lm.linear_feature.tolist(), lm.linear_weight.tolist(), strict=True):
        col = int(fmap[f])
        xv = f"ltrc_bandv(x[{col}], band)" if band else f"x[{col}]"
        if f64:
            body = f"double p = {c_double(w)} * xv; double nv = r[{o}] + p;"
        else:
            body = f"float p = (float)xv * {c_float(w)}; double nv = (double)((float)r[{o}] + p);"
        assign = f"if (xv == xv) r[{o}] = nv;" if lm.linear_skip_missing else f"r[{o}] = nv;"
        lines.append(f"{{ double xv = (double){xv}; {body} {assign} }}")
    return "\n".join(lines)


def _common(lm: LoweredModel, module: str, strategy: str, tuning: Tuning) -> CommonCtx:
    return CommonCtx(
        codegen_version=CODEGEN_VERSION,
        module=module,
        strategy=strategy,
        vtype=lm.value_type,
        acc_type=lm.acc_type,
        lv_type=lm.leaf_type,
        acc_mode=lm.acc_mode,
        n_features=lm.n_features,
        n_trees=lm.n_trees,
        K=lm.n_outputs,
        D=lm.leaf_dim,
        NA=lm.n_slots,
        out_dim=lm.out_dim,
        row_block=tuning.row_block,
        band=lm.band > 0,
        inf_missing=lm.infinite_as_missing,
        band_k=c_literal(lm.band_k, lm.value_type),
        zero_k=c_literal(lm.zero_k, lm.value_type),
        linear_leaves=bool(lm.tree_linear.any()),
        cat_rule=RULE_SUFFIX[lm.categorical_rule],
        n_codes=lm.n_codes,
    )


def _driver(
    lm: LoweredModel, fmap: np.ndarray, tables: Tables, tuning: Tuning, ir_digest: str,
    block_t0: list[int], tbmax: int,
) -> DriverCtx:
    n_leaves = lm.n_leaves
    return DriverCtx(
        n_leaves1=max(1, n_leaves),
        n_trees1=max(1, lm.n_trees),
        lid=tables.ints("ltrc_lid", lm.leaf_ids) if n_leaves else "0",
        leaf_base=c_int_array(lm.leaf_base[:-1]) if lm.n_trees else "0",
        base_acc=_base_acc(lm),
        n_bags=lm.n_bags,
        transform_body=transform_body(lm.transform, lm.n_outputs, dict(lm.transform_params)),
        linear_terms=_linear_terms(lm, fmap),
        average=lm.average_denominator is not None,
        average_raw=lm.average_raw,
        average_denominator=c_double(lm.average_denominator or 1.0),
        parallel_min_rows=tuning.parallel_min_rows,
        ir_digest=ir_digest,
        int_cast_f32=lm.int_input_cast_f32,
        n_blocks=len(block_t0) - 1,
        block_t0=c_int_array(block_t0),
        tbmax=tbmax,
    )


def _linear_leaf_ctx(lm: LoweredModel, fmap: np.ndarray) -> LinearLeafCtx:
    ll = lm.linear_leaves
    assert ll is not None
    return LinearLeafCtx(
        ll_begin=c_int_array(ll.begin),
        ll_end=c_int_array(ll.end),
        ll_const=c_float_array(ll.const, "double"),
        n_ll1=max(1, ll.feature.size),
        ll_feat=c_int_array(fmap[ll.feature]) if ll.feature.size else "0",
        ll_coef=c_float_array(ll.coeff, "double") if ll.coeff.size else "0",
        lvraw=c_float_array(lm.leaf_raw, "double"),
    )


def generate(
    ens: Ensemble,
    module: str,
    strategy: str,
    ir_digest: str,
    tuning: Tuning,
    progress: Callable[[int, int], None] | None = None,
    incbin: bool = False,
) -> Sources:
    """All sources for ``ens`` as module ``module`` (``incbin``: the toolchain takes ``.incbin``)."""
    if ens.network is not None:
        from .network import generate_network

        return apply_isa(generate_network(ens, module, ir_digest, tuning), tuning.isa)
    lm = lower(ens)
    env = _env()
    common = _common(lm, module, strategy, tuning)
    src = Sources(module=module, strategy=strategy)
    src.files["ltrc_api.h"] = env.get_template("ltrc_api.h.j2").render(**render_context(common))
    src.files["ltrc_model.h"] = env.get_template("ltrc_model.h.j2").render(**render_context(common))
    if strategy == "ifelse":
        parts, tables = _ifelse(lm, module, tuning, src, ir_digest, progress)
    else:
        parts, tables = _datadriven(lm, tuning, incbin, ir_digest)
        if progress is not None:
            progress(lm.n_trees, lm.n_trees)
    ctx = render_context(common, *parts, TablesCtx(bins=sorted(tables.names)))
    src.files["ltrc_driver.c"] = env.get_template("ltrc_driver.c.j2").render(**ctx)
    src.binaries.update(tables.binaries)
    src.units.insert(0, "ltrc_driver.c")
    if strategy == "datadriven":
        # the kernel is small; -O3 measured 15-20% faster on it (the tables compile the same)
        src.unit_flags["ltrc_driver.c"] = ["-O3"]
    src.unit_weights["ltrc_driver.c"] = int(lm.internal_count.sum()) // 8 + 1 if strategy == "datadriven" else 500
    src.files["ltrc_init.c"] = env.get_template("ltrc_init.c.j2").render(**render_context(common))
    src.units.append("ltrc_init.c")
    src.unit_weights["ltrc_init.c"] = 1
    return apply_isa(src, tuning.isa)


def apply_isa(src: Sources, isa: str) -> Sources:
    """Add the instruction-set flags of ``isa`` to every generated unit but ``ltrc_init.c`` (trees,
    tables and dense networks alike): the module entry point and the shared wrapper stay portable,
    so importing the extension never executes host-ISA code before the CPU check."""
    if isa != "portable":
        from .isa import cflags

        for name in src.units:
            if name != "ltrc_init.c":
                src.unit_flags[name] = [*src.unit_flags.get(name, []), *cflags(isa)]
    return src


def _ifelse(
    lm: LoweredModel, module: str, tuning: Tuning, src: Sources, ir_digest: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Any], Tables]:
    """Straight-line tree units (into ``src``) and the driver's context parts."""
    tables = Tables(False)
    fmap = np.arange(max(1, lm.n_features), dtype=np.int64)
    units = partition(lm, tuning.block_nodes, tuning.max_block_trees, tuning.unit_nodes)
    blocks = [b for u in units for b in u.blocks]
    header = f"/* Generated by ltrcompile {CODEGEN_VERSION} (module {module}). Do not edit. */\n"
    done = 0
    for u in units:
        name = f"ltrc_trees_{u.index}.c"
        src.files[name] = "".join(unit_source(lm, u, header))
        src.units.append(name)
        src.unit_weights[name] = int(lm.internal_count[u.t0 : u.t1].sum()) + 1
        src.unit_flags[name] = [tuning.tree_opt]
        done += u.t1 - u.t0
        if progress is not None:
            progress(done, lm.n_trees)
    drv = _driver(
        lm, fmap, tables, tuning, ir_digest, [b.t0 for b in blocks] + [lm.n_trees],
        max([b.t1 - b.t0 for b in blocks] + [1]),
    )
    parts: list[Any] = [drv, IfelseCtx(n_blocks1=max(1, len(blocks)))]
    if lm.linear_leaves is not None and lm.tree_linear.any():
        parts.append(_linear_leaf_ctx(lm, fmap))
    return parts, tables


def _datadriven(lm: LoweredModel, tuning: Tuning, incbin: bool, ir_digest: str) -> tuple[list[Any], Tables]:
    """The driver's context parts for node tables plus the traversal kernel."""
    from .nodetable import fast_layout, fast_table, node_table

    tables = Tables(incbin, tuning.dd_incbin_min)
    # rows are copied into a scratch block holding only the features the model reads
    used = used_features(lm)
    fmap = np.full(max(1, lm.n_features), -1, np.int64)
    fmap[used] = np.arange(used.size)
    bt = tuning.dd_block_trees
    t0s = list(range(0, lm.n_trees, bt))
    drv = _driver(lm, fmap, tables, tuning, ir_digest, t0s + [lm.n_trees], max(1, min(bt, lm.n_trees)))
    layout = fast_layout(lm, fmap, int(used.size))
    fast = fast_table(lm, layout, tables, aos=tuning.dd_aos)
    nodes = node_table(lm, fmap, trees=np.flatnonzero(~layout.tree_ok), code_col0=int(used.size) + 1)
    dd = DataDrivenCtx(
        n_cols=int(used.size),
        identity_cols=bool(used.size == lm.n_features),
        used_cols=c_int_array(used) if used.size else "0",
        lanes=tuning.dd_lanes,
        one_lanes=tuning.dd_one_lanes,
        aos=tuning.dd_aos,
        dd_slot=c_int_array(lm.tree_slot) if lm.n_trees else "0",
        n_lv1=max(1, lm.leaf_values.size),
        dd_lv=tables.floats("ltrc_lv", lm.leaf_values.ravel(), lm.leaf_type) if lm.leaf_values.size else "0",
        dd_tlin=",".join(str(int(v)) for v in lm.tree_linear.tolist()) or "0",
        dd_tw=c_float_array(lm.tree_weight, "double") if lm.n_trees else "0",
        code_cols=[int(v) for v in fmap[lm.code_feature].tolist()],
        early_exit=fast.pack32 and (unbalanced(lm) if tuning.dd_early_exit is None else tuning.dd_early_exit),
    )
    parts: list[Any] = [drv, fast, nodes, dd]
    if lm.linear_leaves is not None and lm.tree_linear.any():
        parts.append(_linear_leaf_ctx(lm, fmap))
    return parts, tables


def write_sources(src: Sources, directory: str | os.PathLike[str]) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in src.files.items():
        (d / name).write_text(text, encoding="ascii")
    for name, data in src.binaries.items():
        (d / name).write_bytes(data)


__all__ = [
    "CODEGEN_VERSION",
    "STRATEGIES",
    "Sources",
    "Tuning",
    "Unit",
    "choose_strategy",
    "generate",
    "write_sources",
]
