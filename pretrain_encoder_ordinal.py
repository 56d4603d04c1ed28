"""Successor method, stage 1: pretrain the RoI encoder with the prototype ordinal loss and image
reconstruction on one background kind and digit (docs/method.md §10.6); with --dataset cub or coco, the
VGG16 encoder's head with the ordinal loss alone on the source list (§11)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import dataclasses
import os

import torch

from utils.data.registry import DATASETS
from utils.plots import draw_run_curves, reconstruction_figure
from utils.run.checkpoints import load_checkpoint, load_weights, model_checkpoint, save_checkpoint
from utils.run.context import RunContext
from utils.run.entry import script_main
from utils.run.folder import check_inputs, record_variant
from utils.run.logging import EpochLine
from utils.run.loop import LAST_UNLESS_STOPPING, CheckpointPolicy, fit, make_optimizer, report_summary
from utils.successor.agents import new_encoder
from utils.successor.backbone import load_backbone_weights
from utils.successor.config import EncoderConfig
from utils.successor.data import base_map_loaders, build_prototype_loaders, other_digit_test_loaders, record_lists, record_subset
from utils.successor.epochs import encoder_epoch
from utils.successor.flags import FREE_FLAGS, parse_successor_args

DEFAULT_SAVENAME = "pretrain_mnist_ae"
# the figures of the line printed per epoch (every figure with --log_all 1)
EPOCH_LINE = EpochLine("Ord Acc Proto", train="Train Ord Acc Proto", test="Test Ord Acc Proto", loss="Train Total Loss")
ACC_KEYS = {"acc_inst": "Inst", "acc_proto": "Proto", "acc_inst_other": "Inst Other", "acc_proto_other": "Proto Other"}
SELECTION = "Test Ord Acc Proto"


def encoder_checkpoint(epoch, encoder, metrics, args, backbone=None):
    """`{epoch, state_dict, acc_inst, acc_proto, acc_inst_other, acc_proto_other}` (test accuracies)
    plus what rebuilds the run's encoder and data (`backbone`: the record of the VGG16 weights)."""
    accuracies = {key: float(metrics[f"Test Ord Acc {name}"]) for key, name in ACC_KEYS.items()}
    extra = {"dataset": args.dataset, "backbone": backbone} if backbone else {}
    return model_checkpoint(epoch, encoder, accuracies["acc_proto"], dim=encoder.dim, bg_name=args.bg_name, digit=args.digit,
                            samples_per_class=args.samples_per_class, **accuracies, **extra)


def run_epoch(ctx, encoder, config, optimizer, epoch):
    metrics = encoder_epoch(encoder, ctx.loaders["train"], ctx.device, ctx.generators["sampler"], config, epoch, optimizer)
    with torch.no_grad():
        metrics.update(encoder_epoch(encoder, ctx.loaders["test"], ctx.device, ctx.generators["eval"], config, epoch))
    return metrics


def train(ctx, encoder, config, backbone=None):
    args, run_dir = ctx.args, ctx.run_dir
    optimizer = make_optimizer(args.optimizer, encoder.parameters(), args.lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.steps, gamma=0.1)
    policy = CheckpointPolicy(selection=SELECTION, last=LAST_UNLESS_STOPPING, patience=args.patience)
    save = lambda kind: lambda epoch, metrics: save_checkpoint(encoder_checkpoint(epoch, encoder, metrics, args, backbone),
                                                               os.path.join(run_dir, f"{kind}.pth.tar"))
    return fit(ctx, lambda epoch, final: run_epoch(ctx, encoder, config, optimizer, epoch), policy, {"encoder": encoder},
               {"encoder": optimizer}, {"encoder": scheduler}, save_best=save("best"), save_last=save("last"), line=EPOCH_LINE).last_epoch


def generalisation(ctx, encoder, config):
    """Test accuracies on the other nine digits of the same background -> their means (NaN without data)."""
    generator = ctx.fresh_generator("summary")  # the same draws for `last`, `best` and under --evaluate
    per_digit = {}
    for digit, loader in other_digit_test_loaders(ctx.args, ctx.device):
        with torch.no_grad():
            per_digit[digit] = encoder_epoch(encoder, loader, ctx.device, generator, config, 0, phase="Gen")
    means = {}
    for name in ACC_KEYS.values():
        values = [metrics[f"Gen Ord Acc {name}"] for metrics in per_digit.values()]
        means[name] = sum(values) / len(values) if values else float("nan")
    return means, sorted(per_digit)


def final_summary(ctx, encoder, config, step):
    """For `last` and `best`: the stored test accuracies as `Test {Last|Best} Ord Acc ...` and the
    means over the other nine digits as `Test {Last|Best} Gen Ord Acc ...`; a reconstruction figure."""
    args, run_dir = ctx.args, ctx.run_dir
    summary = {}
    for kind in ("last", "best"):
        path = os.path.join(run_dir, f"{kind}.pth.tar")
        state = load_checkpoint(path)
        load_weights(encoder, path, "encoder")
        for key, name in ACC_KEYS.items():
            summary[f"Test {kind.title()} Ord Acc {name}"] = float(state[key])
        if args.dataset == "mnist":  # the other nine digits of the background
            means, digits = generalisation(ctx, encoder, config)
            for name, value in means.items():
                summary[f"Test {kind.title()} Gen Ord Acc {name}"] = value
        summary[f"Test {kind.title()} Epoch"] = int(state["epoch"])
    if not encoder.has_decoder:  # the VGG16 encoder (real images): no reconstructions, no other digits
        return report_summary(ctx, summary, step, f"summary (best on test {SELECTION})")
    summary["Gen Digits"] = len(digits)
    test_set = ctx.loaders["test"].dataset
    images, _ = test_set[list(range(min(16, len(test_set))))]
    encoder.eval()
    with torch.no_grad():
        reconstructions = encoder.decode(encoder.features(images.to(ctx.device))).cpu()
    summary["Images"] = reconstruction_figure(test_set.images[: len(images)].numpy(), reconstructions.numpy(),
                                              os.path.join(run_dir, "reconstructions.png"),
                                              f"{args.bg_name} digit {args.digit}, best encoder (epoch {summary['Test Best Epoch']})")
    return report_summary(ctx, summary, step, f"summary (best on test {SELECTION}; Gen over {len(digits)} other digits)")


def run(args, run_dir):
    vgg, backbone = DATASETS[args.dataset].BACKBONE == "vgg16", None
    if vgg:  # the VGG16 weights before any image is read, so a bad file stops the run at once
        torch.manual_seed(args.seed)  # the head's initialisation, as RunContext seeds it
        encoder = new_encoder(args)
        backbone = None if args.evaluate else load_backbone_weights(encoder, args.backbone_weights)
    ctx = RunContext(args, run_dir, "pretrain_encoder", build_prototype_loaders, selection=(SELECTION,), free_flags=FREE_FLAGS)
    record_subset(run_dir, "sample_inds", ctx.loaders["train"].dataset)
    record_lists(run_dir, ctx.loaders)
    if not vgg:
        encoder = new_encoder(args)
    if backbone:
        print(f"backbone: VGG16 {backbone.get('warning') or backbone.get('variant') or backbone['path'] + ' sha256 ' + backbone['sha256']}")
        record_variant(run_dir, "backbone_weights", backbone)
        if backbone.get("path"):  # a resumed run continues from the same weights file (moved or copied is fine)
            check_inputs(run_dir, {"--backbone_weights": backbone["path"]}, resuming=ctx.resume is not None)
    encoder = encoder.to(ctx.device)
    config = EncoderConfig.from_args(args)
    if not encoder.has_decoder and not args.evaluate:  # a frozen base alone (VGG16): its maps once per run
        ctx.loaders = base_map_loaders(ctx, encoder, config.precision)
        config = dataclasses.replace(config, maps_given=True)
    try:
        last_epoch = None if args.evaluate else train(ctx, encoder, config, backbone)
        if args.evaluate:
            last_epoch = load_checkpoint(os.path.join(run_dir, "last.pth.tar"))["epoch"]
        summary = final_summary(ctx, encoder, config, (last_epoch or 0) + 1)
        draw_run_curves(ctx.run_dir)
        return summary
    finally:
        ctx.logger.finish()


def main(argv=None):
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse_successor_args)


if __name__ == "__main__":
    main()
