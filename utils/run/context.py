"""Run set-up shared by the scripts: seeding, device, optimisers, run folders."""

import os
import random
import sys

import numpy as np
import torch

from utils.run.files import describe_os_error
from utils.run.folder import RunFolder, RunFolderError, check_data_fingerprint, run_files
from utils.run.signals import interrupt_on_sigterm


def seed_everything(seed):
    """Seeds Python's, numpy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(choice="auto"):
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def set_deterministic(enabled):
    """`--deterministic 1`: deterministic algorithms everywhere (torch, cuBLAS, cuDNN). Call before
    any CUDA work: cuBLAS reads its workspace setting when it starts."""
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def compile_models(net=None, agent=None):
    """`--compile 1`: torch.compile what the training loop calls (the net's `features` and `embed`, the
    agent's batched `sequence_logits`) as instance attributes, so state_dict keys stay unchanged."""
    if net is not None:
        net.features = torch.compile(net.features, dynamic=True)
        net.embed = torch.compile(net.embed, dynamic=True)
    if agent is not None:
        agent.sequence_logits = torch.compile(agent.sequence_logits, dynamic=True)


# offsets from --seed of a run's random streams: "shuffle" (CPU, batch order), "sampler" (training
# draws), "eval" (evaluation draws); "greedy" (the --greedy 1 pass) and "summary" (end-of-run figures)
# are seeded afresh at each use, so they move no other stream and `--evaluate` reproduces them
STREAM_SEEDS = {"shuffle": 0, "sampler": 1, "eval": 2, "greedy": 3, "summary": 4}


def make_generator(device, seed):
    """A torch.Generator on `device` seeded with `seed` (samplers take it explicitly)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def make_optimizer(name, params, lr, weight_decay=0.0):
    """'SGD' (momentum 0.9, as the original, no weight decay), 'Adam' (with `weight_decay`) or 'RMS'
    (RMSprop, torch's defaults). The fused implementation updates all parameters in one op (the same
    update rule as the per-parameter loop); the foreach one where a torch build has no fused kernel."""
    params = [p for p in params if p.requires_grad]
    builders = {
        "SGD": lambda **kw: torch.optim.SGD(params, lr=lr, momentum=0.9, **kw),
        "Adam": lambda **kw: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kw),
        "RMS": lambda **kw: torch.optim.RMSprop(params, lr=lr, **kw),
    }
    build = builders[name]
    try:
        return build(fused=True)
    except (RuntimeError, TypeError, ValueError):
        return build(foreach=True)


def current_lr(optimizer):
    return optimizer.param_groups[0]["lr"]


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


def fail(message, code=1):
    """Exits with one line on stderr (no traceback)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


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


class RunContext:
    """What every training script sets up the same way: device, seeded generators, loaders (the
    2021 `build_loaders`, or `loader_builder(args, device, shuffle_generator)`), the resume state
    (with --resume 1) and the logger (continuing the resumed wandb run)."""

    def __init__(self, args, run_dir, job_type, loader_builder=None):
        from utils.data.datasets import build_loaders, data_fingerprint
        from utils.run.logging import RunLogger
        from utils.run.resume import read_resume

        self.args = args
        self.run_dir = run_dir
        set_deterministic(args.deterministic)
        self.device = pick_device(args.device)
        seed_everything(args.seed)
        print(f"run folder {run_dir} | device {self.device} | args {vars(args)}")
        # Training draws (boxes, actions, pairs) and evaluation draws have separate streams, so a
        # flag that only adds an evaluation (e.g. --greedy 1) leaves the training trajectory unchanged.
        self.generators = {"shuffle": torch.Generator().manual_seed(args.seed + STREAM_SEEDS["shuffle"]),
                           "sampler": self.fresh_generator("sampler"), "eval": self.fresh_generator("eval")}
        self.loaders = (loader_builder or build_loaders)(args, self.device, self.generators["shuffle"])
        self.resume = read_resume(run_dir, args) if args.resume and not args.evaluate else None
        if not args.evaluate:
            check_data_fingerprint(run_dir, data_fingerprint(self.loaders), resuming=self.resume is not None)
        if args.resume and self.resume is None and not args.evaluate:
            print(f"--resume 1: no resume state in {run_dir}; starting from scratch")
        run_id = self.resume["progress"].get("wandb_id") if self.resume else None
        self.logger = RunLogger(run_dir, vars(args), args.wandb_project, args.wandb_mode, job_type=job_type, run_id=run_id)

    def fresh_generator(self, stream):
        """A new generator on the run's device for `stream` (a STREAM_SEEDS name), seeded from --seed."""
        return make_generator(self.device, self.args.seed + STREAM_SEEDS[stream])


def script_main(argv, description, default_savename, run, script, parse=None):
    """Entry point of a training script: parses flags, opens the run folder (utils/run/folder.py) and
    calls `run(args, run_dir)` (`parse`: the parser function, default the 2021 scripts'); expected failures become one line on stderr (exit 1), Ctrl-C and
    SIGTERM a resume hint (exit 130). `script`: the script's file name, recorded as the folder's owner."""
    from utils.run.flags import parse_args
    from utils.run.checkpoints import CheckpointError
    from utils.data.datasets import DataError
    from utils.method2021.epochs import NonFiniteLoss

    run_dir, evaluating = None, False
    try:
        interrupt_on_sigterm()  # replaces quiet_ctrl_c: from here on the script catches both
        args = (parse or parse_args)(argv, description=description)
        evaluating = bool(args.evaluate)
        run_dir = run_folder_path(args.saveroot, args.savename, default_savename)
        with RunFolder(run_dir, script, run_mode(args)) as run_dir:
            return run(args, run_dir)
    except (DataError, CheckpointError, NonFiniteLoss, RunFolderError) as error:
        fail(str(error))
    except OSError as error:
        fail(describe_os_error(error))
    except KeyboardInterrupt:
        fail(interrupted_message(run_dir, evaluating), code=130)
    except (MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        fail(f"out of memory ({str(error).splitlines()[0][:200]}); try a smaller --batch_size or --pooling_size")
