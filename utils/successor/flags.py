"""The one parser of the successor's three scripts (pretrain_encoder_ordinal.py, train_agent.py,
adapt_agent.py): its original's flags at their defaults, with its switches (`--evaluate`, `--sign`
turn on; `--rnn`, `--freeze` turn off), plus the project's own (docs/method.md §10)."""

import argparse
import math
import os

from utils.data.backgrounds import BACKGROUNDS
from utils.data.corrupted import MORECLUTTER, TARGET_NORMS
from utils.data.clutter import IMAGE_SIZE
from utils.data.cub import CUB_LISTS
from utils.data.cub import TARGET_LISTS as CUB_TARGETS
from utils.data.real import REAL_IMAGE_SIZE
from utils.data.registry import DATASETS
from utils.localization.actions import NUM_ACTIONS_MAX, NUM_ACTIONS_SUPPORTED
from utils.localization.flags import add_plugin_flags, add_shared_flag, check_shared_flags
from utils.run.flags import add_run_flags, add_speed_flags, check_run_flags
from utils.successor.backbone import WEIGHTS_HELP
from utils.successor.groups import TRAIN_MODES

# the successor's defaults of the flags both methods share
DEFAULTS = dict(lr=0.001, lr_ag=0.001, savename="", digit=4, pretrained="", seq_len=10, gamma=0.99, steps=[80], epochs=200,
                optimizer="Adam", optimizer_ag="Adam", margin=60.0, batch_size=512, lamb=0.1, lamb_ent=0.5, log_interval=10,
                patience=100, pooling_size=7, pooling_mode="align", num_act=None, min_box_side=28, greedy=0)
# flags that may change when a run resumes (besides the run flags): the input checkpoints' and data's paths (the
# data fingerprint and the inputs' sha256 still must match; batched_eval: a retired flag that resume states written before it went still hold)
FREE_FLAGS = ("pretrained", "pretrained_agent", "visualize", "feature_cache", "box_cache", "batched_eval", "cub_root", "cub_lists",
              "coco_root", "backbone_weights")


def sample_size(text):
    """`--sample_size`: 'whole' (None) or a positive number of training images."""
    if text == "whole":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'whole' or a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'whole' or a positive integer, got {text!r}")
    return value


def get_successor_parser(description=None):
    """The one parser of the successor's three scripts: its flags at their defaults plus this project's."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    group = p.add_argument_group("flags of the successor's code (defaults unchanged unless noted)")
    shared = lambda name, **kw: add_shared_flag(group, name, DEFAULTS[name], **kw)
    add = group.add_argument
    shared("lr", help="learning rate of the encoder (pretraining)")
    shared("lr_ag")
    add("--evaluate", action="store_true", help="only the final evaluation of the run's best checkpoint")
    add("--train_mode", default="shuffle_proto", choices=TRAIN_MODES,
        help="anchor and boxes of the ordinal loss / prototype of the reward (docs/method.md §10.4)")
    add("--bg_name", default="impulse_noise", choices=[*BACKGROUNDS, MORECLUTTER, *CUB_TARGETS],
        help="MNIST: background kind of the data (moreclutter: the 2021 data, 32 fragments, clutter_mnist_scale.py without "
             f"--bg_name); CUB: the test / target list ({', '.join(CUB_TARGETS)})")
    add("--dataset", default="mnist", choices=list(DATASETS), help="dataset (utils/data/registry.py); cub and coco need --img_size 224")
    shared("savename")
    shared("epochs")
    shared("optimizer", help="optimiser of the encoder (Adam: weight decay 1e-5)")
    shared("optimizer_ag", choices=["Adam", "SGD", "RMS"], help="optimiser of the agent (RMS: RMSprop)")
    shared("digit")
    shared("patience")
    shared("lamb")
    add("--lamb_base", type=float, default=1.0, help="weight of the reconstruction loss")
    shared("lamb_ent")
    shared("margin")
    add("--sample_size", type=sample_size, default=None, metavar="whole|N",
        help="few-shot training subset: the first N of a seeded permutation of the digit's training images (default: whole)")
    shared("batch_size")
    shared("steps", help="MultiStepLR milestones of the encoder (epochs)")
    add("--steps_ag", type=int, default=80, help="StepLR step of the agent (epochs)")
    shared("pooling_size")
    shared("pooling_mode")
    shared("log_interval")
    add("--samples_per_class", type=int, default=5, help="K, images per group (prototype)")
    add("--support_size", type=int, default=5, help="adaptation: labelled target images forming the prototype")
    add("--rnn", action="store_false", help="giving it asks for the feed-forward agent, which the original cannot run (refused)")
    add("--hidden_size", type=int, default=48, help="recurrent hidden size of the agent")
    shared("pretrained", help="encoder checkpoint (agent training; adaptation: overrides the encoder the agent was trained with)")
    add("--pretrained_agent", default="", help="adaptation: the trained agent's checkpoint")
    add("--backbone", default="", choices=["", "vgg16", "res18"], help="accepted for the original's commands: the dataset picks the "
        "encoder (vgg16 with cub and coco); res18 is refused")
    add("--freeze", action="store_false", help="giving it unfreezes the encoder, which has no loss here (refused)")
    add("--img_size", type=int, default=IMAGE_SIZE, choices=[IMAGE_SIZE, REAL_IMAGE_SIZE], help="image side (224: cub, coco)")
    shared("min_box_side", help="smallest window side m of the actor (inclusive)")
    add("--sign", action="store_true", help="reward is the sign of the distance decrease")
    shared("seq_len")
    shared("num_act", help=f"number of actions, 2..{NUM_ACTIONS_SUPPORTED} on MNIST, 2..{NUM_ACTIONS_MAX} on real images "
                            "(ids 10-13 change the window's shape); default: 10 on MNIST, 14 (the original's) on real images")
    shared("gamma")
    add("--dim", type=int, default=512, help="embedding dimension")
    add("--dim_ag", type=int, default=None, choices=[64, 512], help="agent input channels, the encoder's (default: 64 MNIST, 512 VGG16)")
    add("--sel_cls", default=None, help="COCO: the one class of the stage (source, e.g. dog; adaptation: the target, e.g. cat)")
    own = p.add_argument_group("flags of this project")
    add_run_flags(own, default_datapath=os.path.join("data", "corrupted_mnist"))
    add_shared_flag(own, "greedy", DEFAULTS["greedy"], help="agent scripts: also evaluate with argmax actions")
    add_shared_flag(own, "visualize", 0, help="adaptation: draw the trajectories of this many target test images before and after adaptation")
    own.add_argument("--feature_cache", type=int, default=1, choices=[0, 1],
                     help="agent training and adaptation: compute the frozen encoder's feature maps and ground-truth embeddings "
                          "once per run, not every batch (docs/speed.md)")
    own.add_argument("--box_cache", type=int, default=1, choices=[0, 1],
                     help="with the feature cache, on a CPU in float32: keep the boxes of each image's latest two episodes with "
                          "their RoI features and embeddings, and read a box the image sees again instead of pooling and "
                          "projecting it (docs/speed.md)")
    own.add_argument("--cub_root", default="", help="CUB: the CUB_200_2011 folder of the official archive")
    own.add_argument("--cub_lists", default=CUB_LISTS, help="CUB: the folder of the group lists (JSON)")
    own.add_argument("--cub_adapt_on", default="target", choices=["target", "source"],
                     help="CUB adaptation: target adapts on the target list and tests on it (the authors' logged runs); source: "
                          "the code as written, which adapts on warbler_train15 with a source prototype")
    own.add_argument("--coco_root", default="", help="COCO: the COCO 2017 folder (annotations/, train2017/, val2017/)")
    own.add_argument("--backbone_weights", default="", metavar="PATH|imagenet|random",
                     help="encoder pretraining on cub / coco: a VGG16 state dict with torchvision key names (the authors used "
                          "Caffe VGG16 weights, vgg16_caffe.pth), imagenet (torchvision IMAGENET1K_V1, a labelled variant) or "
                          "random (tests only)")
    own.add_argument("--target_norm", default="source", choices=list(TARGET_NORMS),
                     help="adaptation: the statistics the target images are normalised with; source: MNIST's, as every "
                          "source stage; author_log: mean 0.0334 / std 0.1653, as the authors' logged adaptation runs "
                          "(a labelled reproduction, docs/results.md)")
    add_plugin_flags(own, "roi", "agent scripts: embed (the embedding distance to the ground truth or prototype) or iou "
                                 "(oracle IoU gain)")
    add_speed_flags(p)
    return p


# the flags each stage does not read (the parser is shared): given another value than the default, refused with one line
ENCODER_ONLY = ("lr", "optimizer", "steps", "lamb", "lamb_base", "margin", "backbone_weights")
AGENT_ONLY = ("lr_ag", "optimizer_ag", "steps_ag", "lamb_ent", "gamma", "sign", "seq_len", "num_act", "min_box_side", "hidden_size",
              "greedy", "feature_cache", "box_cache", "reward", "agent", "pretrained")
UNREAD = {"encoder": (*AGENT_ONLY, "support_size", "pretrained_agent", "target_norm", "cub_adapt_on"),
          "agent": (*ENCODER_ONLY, "support_size", "pretrained_agent", "target_norm", "cub_adapt_on"),
          "adaptation": (*ENCODER_ONLY, "train_mode", "samples_per_class")}  # adaptation's anchor is the prototype


# the flags only some datasets read (each dataset module's FLAGS, utils/data/registry.py): refused with the others
DATASET_FLAGS = ("datapath", "digit", "bg_name", "sample_size", "target_norm", "visualize", "cub_root", "cub_lists", "cub_adapt_on",
                 "coco_root", "sel_cls", "backbone_weights")


def dataset_defaults(args):
    """The defaults that depend on --dataset: the original's 14 actions on real images (10 on MNIST, whose
    commands give 10), and the agent's input channels, the encoder's."""
    real = DATASETS[args.dataset].BACKBONE == "vgg16"
    return {"num_act": 14 if real else NUM_ACTIONS_SUPPORTED, "dim_ag": 512 if real else 64}


def refuse_unread(parser, args, stage, defaults):
    """One line (exit 2) for a flag that `stage` ("encoder", "agent", "adaptation") or the dataset would not
    read; `defaults`: the dataset's own defaults (`dataset_defaults`)."""
    for flag in UNREAD[stage]:
        if getattr(args, flag) != defaults.get(flag, parser.get_default(flag)):
            parser.error(f"--{flag} is not read by {parser.prog} (the {stage} stage); drop it")
    for flag in DATASET_FLAGS:
        if flag not in DATASETS[args.dataset].FLAGS and getattr(args, flag) != parser.get_default(flag):
            parser.error(f"--{flag} is not read with --dataset {args.dataset}; drop it")


def check_successor_args(parser, args, grouped=True, needs=None, visualizes=False, stage="encoder"):
    """As the 2021 checks; `grouped` (encoder pretraining, agent training): batches form groups of K;
    `needs`: {flag: what to give} of the flags the script cannot run without; `visualizes`: the
    script draws trajectories (adaptation), so --visualize means something; `stage`: which flags the
    script reads (`refuse_unread`)."""
    defaults = dataset_defaults(args)
    for flag, value in defaults.items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)
    check_shared_flags(parser, args, ("epochs", "batch_size", "pooling_size", "seq_len", "log_interval", "steps_ag", "min_box_side",
                                      "samples_per_class", "support_size", "hidden_size", "dim"),
                       NUM_ACTIONS_SUPPORTED if args.dataset == "mnist" else NUM_ACTIONS_MAX)
    check_run_flags(parser, args)
    if not args.rnn:
        parser.error("--rnn builds the original's feed-forward agent, which its training loop cannot run; not supported")
    if not args.freeze:
        parser.error("--freeze turns the encoder's training on, but nothing here trains it (no loss reaches it); not supported")
    if grouped and args.samples_per_class > args.batch_size:
        parser.error(f"--samples_per_class {args.samples_per_class} is larger than --batch_size {args.batch_size}: no group fits")
    if grouped and args.sample_size is not None and args.sample_size < args.samples_per_class:
        parser.error(f"--sample_size {args.sample_size} is smaller than --samples_per_class {args.samples_per_class}")
    if args.visualize < 0:
        parser.error(f"--visualize must be >= 0, got {args.visualize}")
    if not math.isfinite(args.lamb_base):
        parser.error(f"--lamb_base must be a finite number, got {args.lamb_base}")
    for flag, what in (needs or {}).items():
        if not getattr(args, flag):
            parser.error(f"--{flag} is needed: {what}")
    if args.compile:
        parser.error("--compile 1: the successor's scripts run uncompiled (their step is RoIAlign and small layers on a few "
                     "rows); run without --compile")
    if args.visualize and not visualizes:
        parser.error("--visualize draws adaptation's trajectories (adapt_agent.py); this script has none to draw")
    refuse_unread(parser, args, stage, defaults)
    check_dataset(parser, args, stage)
    return args


def check_dataset(parser, args, stage):
    """The flags that depend on --dataset (one line, exit 2, for a combination that does not fit)."""
    module = DATASETS[args.dataset]
    channels = dataset_defaults(args)["dim_ag"]
    if args.dim_ag != channels:
        parser.error(f"--dim_ag {args.dim_ag}: the {args.dataset} encoder's RoI features have {channels} channels; pass --dim_ag {channels}")
    if args.backbone == "res18":
        parser.error("--backbone res18: the original's ResNet-18 branch cannot run (its head applies layer4 to a flat vector); "
                     "the real-image encoder is vgg16")
    if args.backbone and args.backbone != module.BACKBONE:
        parser.error(f"--backbone {args.backbone} does not fit --dataset {args.dataset}, whose encoder is {module.BACKBONE}")
    if args.img_size != module.IMAGE_SIZE:
        parser.error(f"--img_size {args.img_size} does not fit --dataset {args.dataset}: pass --img_size {module.IMAGE_SIZE}")
    message = module.check_args(args)
    if message:
        parser.error(message)
    if module.BACKBONE != "vgg16":
        return
    weights = args.backbone_weights
    if weights and weights not in ("imagenet", "random") and not os.path.isfile(weights):  # before the images are read
        parser.error(f"--backbone_weights {weights} is not a file; {WEIGHTS_HELP}")
    if stage == "encoder" and not args.backbone_weights and not args.evaluate:
        parser.error("--backbone_weights is needed with --dataset " + args.dataset + ": a VGG16 state dict with torchvision key "
                     "names (e.g. the Caffe-converted vgg16_caffe.pth of faster-rcnn.pytorch), or imagenet (torchvision's "
                     "IMAGENET1K_V1, downloaded when online)")


def parse_successor_args(argv=None, description=None, grouped=True, needs=None, visualizes=False, stage="encoder"):
    parser = get_successor_parser(description)
    return check_successor_args(parser, parser.parse_args(argv), grouped, needs, visualizes, stage)
