import sys

from stg_lightning.cli import main

sys.exit(main())
