"""The frozen bundle's entry point: the same ``medvault`` command as the wheel's console script."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Import validation may run in forkserver workers; a frozen program must let those children take their branch
    # here instead of starting the command line again.
    multiprocessing.freeze_support()
    from app.cli import main
    sys.exit(main())
