"""A process's memory budget: ``RLIMIT_AS`` = its size once its libraries are imported + a budget.

The service builds uploads in worker processes limited this way (``serve --upload-memory-mb``), so
the limit measures the upload's work, not the interpreter. Child processes inherit the limit, which
is right for the C compiler but wrong for the native reference child of :mod:`ltrcompile.verify`:
it imports XGBoost or LightGBM first (hundreds of MiB of address space: OpenMP, thread arenas) and
would fail inside the library before reading the model. So the budget is set as a *soft* limit with
the hard limit untouched, and recorded in the environment (:data:`BUDGET_ENV`); such a child calls
:func:`rebudget` after its imports to get the same budget on top of its own size.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the budget in MiB that the parent set, for child processes that re-apply it after their imports
BUDGET_ENV = "LTRCOMPILE_MEMORY_BUDGET_MB"


def address_space() -> int:
    """This process's current virtual size in bytes (``VmSize``), 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def limit(budget_mb: float) -> None:
    """Soft ``RLIMIT_AS`` = current size + ``budget_mb`` (no-op for a budget <= 0); the budget is
    recorded in :data:`BUDGET_ENV` for child processes."""
    if budget_mb <= 0:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = address_space() + int(budget_mb * 2**20)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    os.environ[BUDGET_ENV] = f"{budget_mb:g}"


def lift() -> float:
    """In a child of a limited process: raise the soft limit back to the hard one (before heavy
    imports) and return the inherited budget in MiB (0: none was set)."""
    try:
        budget = float(os.environ.get(BUDGET_ENV, "0"))
    except ValueError:
        budget = 0.0
    if budget > 0:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    return budget


def rebudget(budget_mb: float) -> None:
    """After the imports: the inherited budget again, on top of this process's own size."""
    limit(budget_mb)
