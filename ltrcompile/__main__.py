"""``python -m ltrcompile ...``: the ``ltrcompile`` command line."""

import sys

from .cli import main

sys.exit(main())
