import sys

from nice_core.cli import main

sys.exit(main())
