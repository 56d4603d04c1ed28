"""The errors a user can act on. Every one subclasses `UserError` and carries a one-line message;
the scripts' entry points catch `UserError` alone (utils/run/entry.py), so a new error class can
never end a run in a traceback. The second base of some classes keeps them catchable as the
built-in error they refine (a malformed box is a ValueError, a missing MNIST a RuntimeError)."""


class UserError(Exception):
    """An error whose message is one line a user can act on (no traceback is shown)."""


class DataError(UserError):
    """Missing or malformed data files."""


class MNISTUnavailable(UserError, RuntimeError):
    """MNIST could not be found or downloaded; the message says what was looked for and how to provide it."""


class ClutterDoesNotFit(UserError, RuntimeError):
    """Some canvas has no all-zero region left for the next clutter fragment."""


class PatchDoesNotFit(UserError, RuntimeError):
    """Some canvas found no patch spot that leaves the digit box uncovered."""


class SamplerError(UserError, ValueError):
    """The ordinal sampler found no box of the wanted IoU regime (a degenerate ground-truth box)."""


class NonFiniteLoss(UserError):
    """A loss became NaN or infinite; the message names the phase, epoch and batch."""


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class RunFolderError(UserError):
    """The run folder cannot be used as asked."""


class LaunchError(UserError):
    """A command or seed list that cannot be launched (tools/run_seeds.py, tools/sweep_run.py)."""


class SummaryError(UserError):
    """Run folders that cannot be read or summarized together (tools/summarize_runs.py)."""


class CompileFailed(UserError):
    """`--compile 1` could not compile the network (no working C++ compiler, an unsupported op)."""


class FrozenEncoderChanged(UserError):
    """The encoder behind a run's frozen-encoder cache left eval mode or had its parameters changed."""
