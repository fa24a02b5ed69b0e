"""Which trees a model keeps: one policy, used by ``load_model``, the CLI and the service.

The default is what the source library's own ``predict`` does for the object it is given (checked
against XGBoost 3.2 and LightGBM 4.7 with early-stopped models; ``tests/test_tree_selection.py``):

* **XGBoost model files and ``xgboost.Booster``**: every boosting round. ``Booster.predict`` uses
  ``iteration_range=(0, 0)`` (all rounds) even when the file records ``best_iteration``; the IR keeps
  all rounds and ``inspect`` says that a best iteration exists but is not applied.
* **XGBoost scikit-learn models in memory (``XGBModel``)**: ``(0, best_iteration + 1)`` when early
  stopping set ``best_iteration``, as ``XGBModel.predict`` does.
* **LightGBM model files**: every saved round. A text model records no best iteration
  (``Booster(model_file=...).best_iteration`` is -1, and ``save_model`` already wrote only the best
  rounds by default), so ``Booster.predict`` uses all of them.
* **LightGBM ``Booster``/``LGBMModel`` in memory**: ``best_iteration`` when set (``predict`` with
  ``num_iteration=None``), else every round.
* scikit-learn, RankLib, Elasticsearch and IR models: every tree; there are no rounds to select.

The one override is ``num_iteration`` (``--num-iteration`` on the command line, ``num_iteration``
in the service's upload query): ``0`` keeps every round, ``N`` the first ``N`` rounds, ``"best"``
the early-stopping best iteration. Where it does not apply it is refused with the reason.
"""

from __future__ import annotations

from typing import Any, Literal

from .errors import OptionError

NumIteration = int | Literal["best"] | None

#: formats whose models are boosted in rounds that can be selected
_ROUNDS = {"xgboost": ("xgboost-json", "xgboost-ubj", "xgboost-dump"), "lightgbm": ("lightgbm-text", "lightgbm-json")}


def parse_num_iteration(value: Any) -> NumIteration:
    """``None``, an integer >= 0 or ``"best"`` (also from text: ``"5"``, ``"best"``)."""
    if value is None or value == "best":
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise OptionError(f"num_iteration must be an integer >= 0 or 'best', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"num_iteration must be an integer >= 0 or 'best', got {value!r}")
    return int(value)


def library_of(fmt: str | None, obj: Any = None) -> str | None:
    """``xgboost``/``lightgbm`` when the source has selectable boosting rounds, else None."""
    if obj is not None:
        top = type(obj).__module__.split(".")[0]
        return top if top in _ROUNDS else None
    for lib, fmts in _ROUNDS.items():
        if fmt in fmts:
            return lib
    return None


def frontend_options(fmt: str | None, num_iteration: NumIteration, obj: Any = None) -> dict[str, Any]:
    """The frontend options that implement ``num_iteration`` for this source ({} = the default)."""
    n = parse_num_iteration(num_iteration)
    if n is None:
        return {}
    lib = library_of(fmt, obj)
    what = f"a {type(obj).__qualname__}" if obj is not None else f"{fmt} models"
    if lib is None:
        raise OptionError(
            f"num_iteration does not apply to {what}: they have no boosting rounds to select "
            "(every tree is kept)"
        )
    if lib == "xgboost":
        if n == "best":
            return {"best_iteration": True}
        return {"best_iteration": False} if n == 0 else {"num_iteration": n}
    # lightgbm
    if n == "best":
        best = int(getattr(getattr(obj, "booster_", obj), "best_iteration", -1) or -1) if obj is not None else -1
        if best <= 0:
            raise OptionError(
                f"num_iteration='best': {what} record no best iteration (LightGBM keeps it only in "
                "memory; save_model already writes just the best rounds by default)"
            )
        return {"num_iteration": best}
    return {"num_iteration": -1} if n == 0 else {"num_iteration": n}


def _default_rule(prov: Any) -> str:
    """What the library's own predict does by default for the object the IR was read from."""
    lib, fmt = prov.library, prov.format or ""
    if lib == "xgboost":
        if fmt == "xgboost-sklearn":
            return "XGBModel.predict uses best_iteration"
        return "xgboost.Booster.predict uses every round (iteration_range=(0, 0))"
    if lib == "lightgbm":
        if fmt in ("lightgbm-booster", "lightgbm-sklearn"):
            return "lightgbm Booster.predict uses best_iteration when set (num_iteration=None)"
        return "lightgbm.Booster(model_file=...).predict uses every saved round (a file records no best_iteration)"
    return "every tree"


def describe(ens: Any, requested: NumIteration = None) -> str:
    """One sentence for ``inspect``/notes: which rounds the IR keeps and by which rule."""
    prov = ens.provenance
    rng, total = prov.iteration_range, prov.total_iterations
    if rng is None or total is None:
        return f"all {ens.n_trees} trees (no boosting rounds to select)"
    b, e = rng
    kept = f"rounds [{b}, {e}) of {total}"
    if requested is not None:
        why = f"num_iteration={requested!r} (requested)"
    elif prov.tree_selection == "best_iteration":
        why = f"the best iteration (early stopping); default because {_default_rule(prov)}"
    else:
        why = f"default: {_default_rule(prov)}"
    text = f"{kept}: {why}"
    best = prov.best_rounds
    if best is not None and (b, e) != (0, best) and requested is None:
        text += (
            f"; the model records best_iteration {prov.best_iteration} (early stopping) which is not "
            f"applied -- pass --num-iteration best (num_iteration='best') to keep {best} rounds"
        )
    return text
