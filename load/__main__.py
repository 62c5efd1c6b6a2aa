"""``python -m load`` runs the load tool."""

import sys

from .cli import main

sys.exit(main())
