"""Result files: JSON (everything), CSV (one row per timed cell and engine), Markdown, PNG plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .machine import one_line

CSV_FIELDS = (
    "model", "engine", "ours", "threads", "batch", "status", "reason", "n", "min_us", "median_us",
    "p99_us", "mean_us", "us_per_row", "rows_per_s", "ns_per_tree_row", "load_s", "loadavg_before",
    "loadavg_after", "overloaded",
)
BUILD_FIELDS = ("model", "engine", "n_trees", "n_nodes", "parse_s", "codegen_s", "compile_s", "total_s",
                "peak_rss_mib", "peak_tree_rss_mib", "artifact_bytes", "load_s")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def timed_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result["cells"] if c.get("batch") is not None]


def speedups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (model, threads, batch): ltrcompile's best median vs the best other engine's."""
    cells: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for c in timed_rows(result):
        if c["status"] == "ok":
            cells.setdefault((c["model"], c["threads"], c["batch"]), []).append(c)
    out = []
    for (model, threads, batch), rows in cells.items():
        ours = [r for r in rows if r["ours"]]
        other = [r for r in rows if not r["ours"]]
        rec: dict[str, Any] = {"model": model, "threads": threads, "batch": batch}
        if ours:
            b = min(ours, key=lambda r: r["median_us"])
            rec.update(best_ours=b["engine"], best_ours_us=b["median_us"])
        if other:
            b = min(other, key=lambda r: r["median_us"])
            rec.update(best_other=b["engine"], best_other_us=b["median_us"])
        if ours and other:
            rec["speedup"] = rec["best_other_us"] / rec["best_ours_us"]
        out.append(rec)
    return out


def ours_gate_failures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Gate records of ltrcompile engines that disagreed with the source library."""
    return [g for g in result["gate"] if g["engine"].startswith("ltrcompile") and not g["passed"]]


# ---------------------------------------------------------------- JSON / CSV
def write_json(result: dict[str, Any], path: Path) -> Path:
    data = dict(result)
    data["speedups"] = speedups(result)
    path.write_text(json.dumps(data, indent=1, default=_json_default))
    return path


def write_csv(result: dict[str, Any], path: Path) -> Path:
    m = result["machine"]
    with open(path, "w", newline="") as fh:
        fh.write(f"# machine: {one_line(m)}\n# git: {m['git']}; date {m['date']}; "
                 f"versions: {json.dumps(m['versions'])}\n")
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for c in result["cells"]:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in c.items()})
    return path


def write_builds_csv(result: dict[str, Any], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=BUILD_FIELDS, extrasaction="ignore")
        w.writeheader()
        for b in result["builds"]:
            w.writerow({**b, **b.get("phases", {})})
    return path


# ---------------------------------------------------------------- Markdown
def _fmt_us(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    if v >= 100_000:
        return f"{v / 1000:,.0f} ms"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _fmt_time(us: float | None) -> str:
    """A time with its unit (us, ms or s), for prose."""
    if us is None or not math.isfinite(us):
        return "-"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us:.3g} us"


def _engine_order(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    names = list(dict.fromkeys(r["engine"] for r in rows))
    return sorted(names, key=lambda n: (not n.startswith("ltrcompile"), n.startswith("ltrcompile.interp"),
                                        names.index(n)))


def _cell(text: str) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("\\\\|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def markdown(result: dict[str, Any], image_names: dict[str, str] | None = None) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [
        f"# ltrcompile benchmark ({cfg['mode']} mode)",
        "",
        f"- machine: {one_line(m)}",
        f"- CPU flags: {', '.join(m.get('cpu_flags', []))}; load average at start {m['loadavg_start']}, "
        f"at end {m.get('loadavg_end')}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- git {m['git']}, {m['date']}, run took {result.get('elapsed_s', 0):.0f} s",
        f"- protocol: engines interleaved round-robin per repetition; {cfg['budget']['warmup']} warm-up calls; "
        f"~{cfg['budget']['seconds']} s sampled per engine per cell (at least {cfg['budget']['min_reps']} calls, "
        f"fewer only for calls > 50 ms); median and p99 per call; input: {cfg['input']}; "
        f"gate: |d| <= {cfg['gate_rtol']:g} x max(1, |ref|) vs the source library on held-out rows",
        "",
        "## Models",
        "",
    ]
    mrows = []
    for mod in result["models"]:
        mrows.append([f"`{mod['id']}`", mod["library"], str(mod["n_trees"]), str(mod.get("n_leaves", "-")),
                      str(mod.get("max_depth", "-")), str(mod["n_features"]), mod["data"], mod["purpose"]])
    lines += _table(["model", "library", "trees", "leaves", "max depth", "features", "data", "purpose"], mrows)
    for s in result.get("skipped_models", []):
        lines.append(f"\nSkipped model `{s['id']}`: {_cell(s['reason'])}")

    lines += ["", "## Correctness gate (raw output vs the source library)", ""]
    grows = []
    for g in result["gate"]:
        e = g.get("edge") or {}
        edge = (f"{e['n_exact']}/{e['n']} exact (max \\|d\\| {e['max_abs']:.2g})" if "n_exact" in e
                else e.get("error", "-"))
        grows.append([f"`{g['model']}`", g["engine"], "pass" if g["passed"] else f"**FAIL**: {g['reason']}",
                      f"{g['n_exact']}/{g['n']}", f"{g['max_abs']:.2g}", edge])
    lines += _table(["model", "engine", "gate", "bit-exact rows", "max \\|d\\|", "edge rows (not gating)"], grows)
    skipped = [c for c in result["cells"] if c.get("batch") is None and c["status"] != "gate-failed"]
    if skipped:
        lines += ["", "Engines not run:", ""]
        lines += [f"- `{c['model']}` / {c['engine']}: {c['status']} -- {_cell(c['reason'])}" for c in skipped]

    if result["builds"]:
        lines += ["", "## Builds (each in a fresh subprocess)", ""]
        brows = []
        for b in result["builds"]:
            ph = b.get("phases", {})
            brows.append([
                f"`{b['model']}`", b["engine"], str(b.get("n_nodes") or "-"),
                f"{ph.get('codegen_s', float('nan')):.2f}" if "codegen_s" in ph else "-",
                f"{ph.get('compile_s', 0):.2f}", f"{b['total_s']:.2f}",
                f"{b['peak_rss_mib']:.0f} / {b['peak_tree_rss_mib']:.0f}",
                f"{b['artifact_bytes'] / 1024:,.0f}", f"{(b.get('load_s') or 0) * 1000:.1f}",
                f"reused ({b.get('built_at', '?')})" if b.get("reused") else "this run",
            ])
        lines += _table(["model", "engine", "nodes", "codegen s", "compile s", "total s",
                         "peak RSS MiB (process / tree)", "artifact KiB", "load ms", "measured"], brows)

    sp = {(s["model"], s["threads"], s["batch"]): s for s in speedups(result)}
    rows = timed_rows(result)
    lines += ["", "## Latency: median us per call (p99 in brackets for batch <= 100)", "",
              "`-` = not run in that cell (see the JSON for the reason); speed-up = best other engine's "
              "median / ltrcompile's best median (> 1 means ltrcompile is faster).", ""]
    for mod in result["models"]:
        mr = [r for r in rows if r["model"] == mod["id"]]
        if not mr:
            continue
        names = _engine_order(result, mr)
        lines += [f"### `{mod['id']}` ({mod['n_trees']} trees)", ""]
        if image_names and mod["id"] in image_names:
            lines += [f"![latency {mod['id']}]({image_names[mod['id']]})", ""]
        body = []
        keys = sorted({(r["threads"], r["batch"]) for r in mr})
        for threads, batch in keys:
            row = [str(threads), f"{batch:,}"]
            for n in names:
                c = next((r for r in mr if r["engine"] == n and r["threads"] == threads and r["batch"] == batch), None)
                if c is None or c["status"] != "ok":
                    row.append("-")
                else:
                    txt = _fmt_us(c["median_us"])
                    if batch <= 100:
                        txt += f" ({_fmt_us(c['p99_us'])})"
                    row.append(txt)
            s = sp.get((mod["id"], threads, batch), {})
            row.append(f"{s['speedup']:.2f}x vs {s['best_other']}" if "speedup" in s else "-")
            body.append(row)
        lines += _table(["threads", "batch", *names, "speed-up"], body)
        big = max(b for _, b in keys)
        per = [r for r in mr if r["batch"] == big and r["status"] == "ok" and r["threads"] == keys[0][0]]
        if per:
            lines += ["", f"ns per (tree x row) at batch {big:,}, {keys[0][0]} thread(s): " + "; ".join(
                f"{r['engine']} {r['ns_per_tree_row']:.2f}" for r in sorted(per, key=lambda r: r["ns_per_tree_row"]))]
        lines.append("")

    lines += ["## Where ltrcompile is not the fastest", ""]
    losses = [s for s in speedups(result) if s.get("speedup", math.inf) < 1.0]
    if not losses:
        lines.append("Nowhere in this run (every cell with both kinds of engine).")
    for s in sorted(losses, key=lambda s: (s["model"], s["threads"], s["batch"])):
        lines.append(f"- `{s['model']}`, {s['threads']} thread(s), batch {s['batch']:,}: {s['best_other']} "
                     f"{_fmt_time(s['best_other_us'])} vs {s['best_ours']} {_fmt_time(s['best_ours_us'])} "
                     f"({s['speedup']:.2f}x)")
    if image_names and "compile" in image_names:
        lines += ["", "## Build time vs model size", "", f"![build time]({image_names['compile']})"]
    lines += ["", "## Engines", ""]
    lines += [f"- **{k}**: {v}" for k, v in result["engines"].items()]
    return "\n".join(lines) + "\n"


def summary_text(result: dict[str, Any]) -> str:
    """A few lines for the terminal: per model, the speed-up at each (threads, batch)."""
    out = []
    by_model: dict[str, list[dict[str, Any]]] = {}
    for s in speedups(result):
        by_model.setdefault(s["model"], []).append(s)
    for model, ss in by_model.items():
        parts = []
        for s in sorted(ss, key=lambda s: (s["threads"], s["batch"])):
            if "speedup" in s:
                parts.append(f"t{s['threads']}/b{s['batch']}: {s['speedup']:.2f}x")
            elif "best_ours" in s:
                parts.append(f"t{s['threads']}/b{s['batch']}: {_fmt_time(s['best_ours_us'])} (no other engine)")
        out.append(f"{model}: ltrcompile best vs best other -- " + ", ".join(parts))
    return "\n".join(out)


# ---------------------------------------------------------------- plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(result: dict[str, Any], model: str, path: Path) -> Path | None:
    rows = [r for r in timed_rows(result) if r["model"] == model and r["status"] == "ok"]
    if not rows:
        return None
    plt = _plt()
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(threads), figsize=(6.2 * len(threads), 4.4), squeeze=False, sharey=True)
    names = _engine_order(result, rows)
    colors = plt.get_cmap("tab10").colors
    handles: dict[str, Any] = {}
    for ax, t in zip(axes[0], threads, strict=True):
        for i, n in enumerate(names):
            pts = sorted((r["batch"], r["median_us"]) for r in rows if r["engine"] == n and r["threads"] == t)
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ours = n.startswith("ltrcompile")
            (line,) = ax.plot(xs, ys, marker="o" if ours else "s", linewidth=2.2 if ours else 1.2,
                              linestyle="-" if ours else "--", label=n, markersize=4, color=colors[i % 10])
            handles.setdefault(n, line)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size (rows per call)")
        ax.set_title(f"{model}, {t} thread{'s' if t > 1 else ''}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("median time per call (us)")
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="lower center",
               ncol=min(4, len(handles)), frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(handles) + 3) // 4), 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_builds(result: dict[str, Any], path: Path) -> Path | None:
    builds = result["builds"]
    if not builds:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for eng in dict.fromkeys(b["engine"] for b in builds):
        pts = sorted((b.get("n_nodes") or b["n_trees"], b["total_s"], b["model"]) for b in builds if b["engine"] == eng)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        ax.plot(xs, ys, marker="o", linestyle="-" if eng.startswith("ltrcompile") else "--", label=eng)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model size (nodes in the IR; trees when unknown)")
    ax.set_ylabel("build time, parse + codegen + compile (s)")
    ax.set_title("Build time vs model size", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_all(result: dict[str, Any], out: Path, plots: bool = True) -> list[Path]:
    """Write every report into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_json(result, out / "results.json"), write_csv(result, out / "results.csv"),
             write_builds_csv(result, out / "builds.csv")]
    images: dict[str, str] = {}
    if plots:
        for mod in result["models"]:
            p = plot_latency(result, mod["id"], out / f"latency-{mod['id']}.png")
            if p:
                images[mod["id"]] = p.name
                paths.append(p)
        p = plot_builds(result, out / "build-time.png")
        if p:
            images["compile"] = p.name
            paths.append(p)
    md = out / "results.md"
    md.write_text(markdown(result, images))
    paths.append(md)
    return paths
