"""Signals: the first thing a script runs, before its heavy imports (torch takes a second or two to
load); from then on Ctrl-C and SIGTERM as KeyboardInterrupt; and a checkpoint write they cannot cut."""

import contextlib
import os
import signal
import sys
import threading


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


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C and SIGTERM (once or many times) wait until the block ends, then interrupt as usual: a
    checkpoint being written is written whole. Outside the main thread (signals reach only it) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            raise KeyboardInterrupt(f"signal {received[0]}")


@contextlib.contextmanager
def interrupts_ignored():
    """While a stopped script reports and exits: a further Ctrl-C or SIGTERM must not cut that short.
    The handlers come back afterwards (a caller in the same process, e.g. a notebook, keeps its Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
