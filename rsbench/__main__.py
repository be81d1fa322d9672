"""`python -m rsbench ...` (also `torchrun -m rsbench run ...`)."""

import sys

from rsbench.cli.main import main

sys.exit(main())
