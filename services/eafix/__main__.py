"""`python -m eafix ...`: the same CLI as the `eafix` console script."""

import sys

from eafix.cli import main

sys.exit(main())
