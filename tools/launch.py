"""Launching runs of a recipe: one run folder and seed per run, wall time recorded in the folder.

Used by `tools/run_seeds.py` (one recipe over several seeds, sequential or one lane per GPU) and
`tools/sweep_run.py` (one wandb sweep run).
"""

import ast
import datetime
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from utils.errors import LaunchError
from utils.run.files import write_atomically

LAUNCH_FILE = "launch.json"



def last_flag_value(args, flag):
    """The value of the last `--flag X` or `--flag=X` in args (argparse's rule: the last one wins), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
    return value


def program_savename(program):
    """The run folder name a program uses by default, or None: a training script's module-level
    `DEFAULT_SAVENAME = "..."` (read from its syntax tree; the script is neither imported nor run), or
    the `--savename X` on a recipe's command line (./pretrain.sh)."""
    try:
        with open(program) as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError):
        return None
    if program.endswith(".py"):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name) and target.id == "DEFAULT_SAVENAME" for target in node.targets):
                return node.value.value if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) else None
        return None
    found = re.findall(r"--savename[ =]+['\"]?([\w.\-/]+)", text)
    return found[-1] if found else None


def base_command(command):
    """A `.py` program runs with this interpreter; anything else (a recipe such as ./joint.sh) as given."""
    if not command:
        raise LaunchError("no command given (e.g. ./joint.sh or train-joint.py and its flags)")
    program = command[0]
    if not os.path.isfile(program):
        raise LaunchError(f"{program}: no such file")
    if program.endswith(".py"):
        return [sys.executable, *command]
    if not os.access(program, os.X_OK):
        raise LaunchError(f"{program} is not executable")
    return [program if os.sep in program else os.path.join(".", program), *command[1:]]


def gpu_lanes(env):
    """The devices named in CUDA_VISIBLE_DEVICES ('0,1' -> ['0', '1']); [None] (one lane, env as is) for fewer than two."""
    devices = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return devices if len(devices) > 1 else [None]


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def record_launch(run_dir, command, seed, device, start, wall_s, exit_code):
    """Appends one session (start, wall time, exit code) to `<run_dir>/launch.json`; a resumed run adds a
    session. Written after the run ends, and only into a folder the run made (a run refused before making
    its folder leaves nothing behind)."""
    if not os.path.isdir(run_dir):
        return None
    path = os.path.join(run_dir, LAUNCH_FILE)
    record = {"sessions": []}
    if os.path.isfile(path):
        try:
            with open(path) as stream:
                record = json.load(stream)
        except (OSError, ValueError):
            record = {"sessions": []}
    record.update(command=command, seed=seed, device=device)
    record.setdefault("sessions", []).append({"start": start, "wall_s": round(wall_s, 3), "exit_code": exit_code})
    write_atomically(path, lambda stream: stream.write(json.dumps(record, indent=1).encode()))
    return path


# the training processes the launcher runs now: a signal to the launcher reaches each of them
RUNNING = set()
RUNNING_LOCK = threading.Lock()


def stop_running():
    """Sends SIGTERM to every training process still running: each saves its state and stops cleanly
    (exit code 130, `--resume 1` continues it)."""
    with RUNNING_LOCK:
        processes = list(RUNNING)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)


def run_recorded(command, run_dir, seed, env=None, device=None, log_path=None):
    """Runs `command` to the end (output to the terminal, or to `log_path`), records it in the run
    folder's launch.json and returns its exit code. Ctrl-C or SIGTERM to the launcher (a
    KeyboardInterrupt here) stops the process cleanly, records its exit code and re-raises."""
    env = dict(os.environ if env is None else env)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    start, tick = now(), time.monotonic()
    log = None
    try:
        if log_path:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
            log = open(log_path, "w")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT if log else None)
    except OSError as error:
        if log:
            log.close()
        raise LaunchError(f"cannot run {command[0]}: {error.strerror}") from None
    with RUNNING_LOCK:
        RUNNING.add(process)
    try:
        try:
            code = process.wait()
        except KeyboardInterrupt as interrupt:
            if not from_sigterm(interrupt):  # Ctrl-C on a terminal reached the process too: give it time to stop
                wait_until_stopped(process, timeout=GRACE_S)
            stop_running()
            code = wait_until_stopped(process)
            record_launch(run_dir, command, seed, device, start, time.monotonic() - tick, code)
            raise
    finally:
        with RUNNING_LOCK:
            RUNNING.discard(process)
        if log:
            log.close()
    record_launch(run_dir, command, seed, device, start, time.monotonic() - tick, code)
    return code


GRACE_S = 3.0  # after Ctrl-C, how long a process has to stop on its own before the launcher sends SIGTERM


def from_sigterm(interrupt):
    """True for the KeyboardInterrupt that utils.run.signals raises on SIGTERM (only the launcher got it)."""
    return bool(interrupt.args) and interrupt.args[0] == f"signal {int(signal.SIGTERM)}"


def wait_until_stopped(process, timeout=None):
    """Waits (at most `timeout` seconds) for a process told to stop -> its exit code, or None when it is
    still running; a further Ctrl-C meanwhile is not obeyed (the process is saving)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            return process.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None
        except KeyboardInterrupt:
            continue


def seed_jobs(command, seeds, saveroot, savename):
    """One job per seed: the command plus `--saveroot R --savename <savename>_seed<k> --seed k`
    (appended last, so they win over the recipe's own), with `{seed}` in the command replaced by k."""
    if len(set(seeds)) != len(seeds):
        raise LaunchError(f"seeds repeat: {seeds}")
    jobs = []
    for seed in seeds:
        name = f"{savename}_seed{seed}"
        argv = [arg.replace("{seed}", str(seed)) for arg in command]
        jobs.append({"seed": seed, "run_dir": os.path.join(saveroot, name),
                     "command": [*argv, "--saveroot", saveroot, "--savename", name, "--seed", str(seed)]})
    return jobs


def run_jobs(jobs, lanes, env=None, log=print):
    """Runs the jobs one after another on one lane, or in parallel with one job per lane (GPU) at a
    time, each job's output then going to `<run_dir>.log`. Returns {seed: exit code}."""
    codes = {}
    if len(lanes) == 1:
        for job in jobs:
            log(f"== seed {job['seed']} -> {job['run_dir']}: {' '.join(job['command'])}")
            codes[job["seed"]] = run_recorded(job["command"], job["run_dir"], job["seed"], env, lanes[0])
        return codes
    pending = queue.Queue()
    for job in jobs:
        pending.put(job)
    lock = threading.Lock()

    def work(device):
        while True:
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            log_path = job["run_dir"] + ".log"
            with lock:
                log(f"== seed {job['seed']} on GPU {device} -> {job['run_dir']} (output: {log_path})")
            code = run_recorded(job["command"], job["run_dir"], job["seed"], env, device, log_path)
            with lock:
                codes[job["seed"]] = code
                log(f"== seed {job['seed']} on GPU {device} finished with exit code {code}")

    threads = [threading.Thread(target=work, args=(device,)) for device in lanes]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt as interrupt:  # the main thread gets the signal: stop the running seeds, start no other
        while not pending.empty():
            pending.get_nowait()
        if not from_sigterm(interrupt):
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline:  # a further Ctrl-C meanwhile must not leave the seeds running
                try:
                    time.sleep(max(0.0, deadline - time.monotonic()))
                except KeyboardInterrupt:
                    continue
        stop_running()
        for thread in threads:
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:
                    continue
        raise
    return codes


def seed_from_run_id(run_id):
    """A reproducible seed in [0, 2**31) from a wandb run id (each sweep run gets its own)."""
    import hashlib

    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) % 2**31


def sweep_command(program, args, env):
    """The command of one wandb sweep run: `program` with the sweep's `--name=value` args plus, unless
    the sweep sets them, `--savename sweep_<sweep id>/<run id>`, `--seed` (from the run id),
    `--datapath $DATAPATH` and `--saveroot $SAVEROOT`. Returns (command, run_dir, seed, run_id)."""
    if not program.endswith(".py") or not os.path.isfile(program):
        raise LaunchError(f"{program}: not a training script (ordinal-pretrain-cluttermnist-scale.py or train-joint.py)")
    run_id = env.get("WANDB_RUN_ID")
    if not run_id:
        raise LaunchError("WANDB_RUN_ID is not set: start this through `wandb agent` (or set WANDB_RUN_ID to try it)")
    extra = []
    for flag, variable in (("--datapath", "DATAPATH"), ("--saveroot", "SAVEROOT")):
        if last_flag_value(args, flag) is None and env.get(variable):
            extra += [flag, env[variable]]
    if last_flag_value(args, "--savename") is None:
        extra += ["--savename", f"sweep_{env.get('WANDB_SWEEP_ID') or 'local'}/{run_id}"]
    seed = last_flag_value(args, "--seed")
    if seed is None:
        seed = seed_from_run_id(run_id)
        extra += ["--seed", str(seed)]
    command = [sys.executable, program, *args, *extra]
    saveroot = last_flag_value(command, "--saveroot") or "results"
    return command, os.path.join(saveroot, last_flag_value(command, "--savename")), int(seed), run_id
