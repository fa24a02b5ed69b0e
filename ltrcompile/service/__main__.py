"""``python -m ltrcompile.service --store DIR ...``"""

import sys

from .cli import serve_main

sys.exit(serve_main())
