"""`python -m bots`: the command line (bots/cli.py)."""

import sys

from bots.cli import main

sys.exit(main())
