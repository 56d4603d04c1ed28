"""Sample grid of the five background kinds (docs/method.md §10.1): one row per kind, the first --count images.

    python clutter_mnist_scale.py --bg_name patch --digits 3 --splits test   # once per kind
    python tools/background_grid.py --digit 3 --split test --out docs/backgrounds.png

Reads <datapath>/<split>/<kind>/<digit>_{data,label}.npy; kinds without files are skipped with a note.
The red square is the label [x, y, 28, 28].
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from utils.data.backgrounds import BACKGROUNDS  # noqa: E402
from utils.data.datasets import load_arrays  # noqa: E402
from utils.data.mnist import SPLITS  # noqa: E402
from utils.errors import DataError  # noqa: E402


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datapath", default="data/Synthesis_mnist", help="generated data root (default: %(default)s)")
    parser.add_argument("--digit", type=int, default=3, choices=range(10), metavar="0..9", help="digit (default: %(default)s)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default: %(default)s)")
    parser.add_argument("--count", type=int, default=8, help="images per kind, the file's first ones (default: %(default)s)")
    parser.add_argument("--out", default="docs/backgrounds.png", help="output PNG (default: %(default)s)")
    return parser


def load_kinds(args):
    """{kind: (images, labels)} for every kind with files; a note on stderr for each kind without."""
    found = {}
    for bg in BACKGROUNDS:
        try:
            images, labels = load_arrays(args.datapath, args.digit, args.split, bg=bg)
        except DataError as error:
            print(f"skipping {bg}: {error}", file=sys.stderr)
            continue
        found[bg] = images[: args.count], labels[: args.count]
    return found


def draw_grid(kinds, count, out):
    figure, axes = plt.subplots(len(kinds), count, figsize=(0.9 * count + 0.6, 0.9 * len(kinds)), squeeze=False)
    for row, (bg, (images, labels)) in zip(axes, kinds.items()):
        row[0].set_ylabel(bg.replace("_", "\n"), rotation=0, ha="right", va="center", fontsize=7)
        for axis, image, (x, y, w, h) in zip(row, images, labels):
            axis.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axis.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=0.5))
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
    figure.subplots_adjust(left=0.6 / (0.9 * count + 0.6), right=1, top=1, bottom=0, wspace=0.04, hspace=0.04)
    figure.savefig(out, dpi=100)
    plt.close(figure)


FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be positive, got {args.count}")
    if os.path.splitext(args.out)[1].lower() not in FIGURE_SUFFIXES:  # matplotlib would add .png or fail on an unknown one
        parser.error(f"--out {args.out}: give a file ending in {', '.join(FIGURE_SUFFIXES)}")
    kinds = load_kinds(args)
    if not kinds:
        parser.error(f"no background files for digit {args.digit} ({args.split}) under {args.datapath}; "
                     f"generate them with clutter_mnist_scale.py --bg_name KIND")
    try:
        draw_grid(kinds, args.count, args.out)
    except OSError as error:
        parser.error(f"cannot write {args.out}: {error.strerror or error}")
    print(f"wrote {args.out} ({', '.join(kinds)}; digit {args.digit}, {args.split}, {args.count} per kind)")
    return args.out


if __name__ == "__main__":
    main()
