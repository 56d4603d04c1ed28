"""The entry point of every training script (`script_main`): flags, run folder, and the promise that
a run ends in one line, never a traceback, for every error meant for the user."""

import importlib.util
import os
import sys

from utils.errors import UserError
from utils.run.files import describe_os_error
from utils.run.folder import RunFolder, run_files
from utils.run.signals import interrupt_on_sigterm, interrupts_ignored

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message, code=1):
    """Exits with one line on stderr (no traceback)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def run_folder_path(saveroot, savename, default_name):
    """`<saveroot>/<savename or default_name>`, normalised."""
    return os.path.normpath(os.path.join(saveroot, savename or default_name))


def run_mode(args):
    """How a script uses its run folder (see utils/run/folder.py)."""
    if args.evaluate:
        return "evaluate"
    if args.resume:
        return "resume"
    return "overwrite" if args.overwrite else "fresh"


def interrupted_message(run_dir, evaluating=False):
    """The line printed when a run is stopped by Ctrl-C or SIGTERM."""
    if run_dir is None or evaluating:
        return "interrupted"
    resume_file = os.path.join(run_dir, "resume.pth.tar")
    if os.path.isfile(resume_file):
        return (f"interrupted: the state after the last complete epoch is in {resume_file}; "
                f"continue with the same command plus --resume 1")
    if run_files(run_dir):
        return "interrupted before the first epoch ended (nothing to resume yet); start again with the same command plus --resume 1"
    return "interrupted before the first epoch ended (nothing to resume yet); start again with the same command"


def out_of_memory(error):
    """True for the errors of a failed CPU or CUDA allocation (e.g. a huge --batch_size)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def script_main(argv, description, default_savename, run, script, parse):
    """Entry point of a training script: `parse(argv, description)` -> args, opens the run folder
    (utils/run/folder.py) and calls `run(args, run_dir)`. Every UserError becomes one line on stderr
    (exit 1), as does an OSError (naming its file) and an allocation failure; Ctrl-C and SIGTERM a
    resume hint (exit 130). `script`: the script's file name, recorded as the folder's owner."""
    run_dir, evaluating = None, False
    try:
        interrupt_on_sigterm()  # replaces quiet_ctrl_c: from here on the script catches both
        args = parse(argv, description=description)
        evaluating = bool(args.evaluate)
        run_dir = run_folder_path(args.saveroot, args.savename, default_savename)
        with RunFolder(run_dir, script, run_mode(args)) as run_dir:
            return run(args, run_dir)
    except UserError as error:
        fail(str(error))
    except OSError as error:
        fail(describe_os_error(error))
    except KeyboardInterrupt:
        with interrupts_ignored():
            fail(interrupted_message(run_dir, evaluating), code=130)
    except (MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        fail(f"out of memory ({str(error).splitlines()[0][:200]}); try a smaller --batch_size or --pooling_size")


def load_script(path):
    """Imports a top-level script by its file name, hyphenated ones too (e.g. train-joint.py, which
    `import` cannot name), so tests, benchmarks and notebooks can call its `main([...])`. A relative
    `path` is taken from the repository root."""
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    spec = importlib.util.spec_from_file_location(os.path.basename(path).replace("-", "_").removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
