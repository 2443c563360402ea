import sys

from tinymath.cli import main

sys.exit(main())
