"""The first thing a script runs, before its heavy imports (torch takes a second or two to load)."""

import os
import signal
import sys


def quiet_ctrl_c():
    """Until the script's own handling starts: Ctrl-C or SIGTERM exits with one line and code 130
    instead of a traceback from inside an import."""

    def stop(signum, frame):
        print("interrupted before the run started; nothing was written", file=sys.stderr, flush=True)
        os._exit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def interrupt_on_sigterm():
    """From here on Ctrl-C and SIGTERM (a scheduler's kill) raise KeyboardInterrupt, which the script catches."""

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
