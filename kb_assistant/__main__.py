"""``python -m kb_assistant`` runs the ``kb`` command line."""

import sys

from .cli import main

sys.exit(main())
