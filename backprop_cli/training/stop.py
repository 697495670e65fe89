"""Stopping a run cleanly: Ctrl-C and SIGTERM set a flag that the training loop checks at
every batch, so a run stops between batches, never in the middle of writing a file."""

from __future__ import annotations


class StopRequest:
    """Set by the signal handler; the loop stops at the next batch (KeyboardInterrupt)."""

    active = False  # a training loop (or a sweep) is running and checks ``requested``
    requested = False

    @classmethod
    def check(cls) -> None:
        if cls.requested:
            raise KeyboardInterrupt


STOP = StopRequest


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM stop training the same way, even where a shell started us with SIGINT
    ignored: the first asks the running loop to stop at its next batch (after any file being
    written); a second one, or one outside training, interrupts at once."""
    import signal

    def stop(signum, frame):
        if STOP.active and not STOP.requested:
            STOP.requested = True
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
