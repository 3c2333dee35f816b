"""``python -m poselit.cli ...``: the ``poselit`` command without the console script (the
background training runs start ``python -m poselit.cli fit -c RECIPE.yaml``)."""

import sys

from poselit.cli import main

sys.exit(main())
