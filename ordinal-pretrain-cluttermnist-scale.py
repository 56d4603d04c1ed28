"""Ordinal pretraining of the RoI embedding net on one digit of cluttered MNIST (docs/method.md §4)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import os

import torch

from models import Net
from utils.data.loaders import build_loaders
from utils.method2021.config import PretrainConfig
from utils.method2021.epochs import pretrain_epoch
from utils.method2021.evaluation import distance_vs_iou, spearman
from utils.method2021.flags import FREE_FLAGS, SELECTION, parse_args
from utils.plots import distance_scatter, draw_run_curves, embedding_projection
from utils.run.checkpoints import load_weights, model_checkpoint, save_checkpoint
from utils.run.context import RunContext
from utils.run.entry import script_main
from utils.run.logging import EpochLine, format_metrics
from utils.run.loop import LAST_EVERY_EPOCH, CheckpointPolicy, fit, make_optimizer
from utils.run.speed import compile_models

DEFAULT_SAVENAME = "cluttermnist_pretrain"
# the figures of the line printed per epoch (every figure with --log_all 1)
EPOCH_LINE = EpochLine("Ord Acc Inst", train="Train Ord Acc Inst", test="Test Ord Acc Inst", loss="Train Total Loss")


def evaluate_only(ctx, net, config):
    """`--evaluate 1`: loads best.pth.tar and reports train and test metrics."""
    args, run_dir, device, loaders, generator = ctx.args, ctx.run_dir, ctx.device, ctx.loaders, ctx.generators["eval"]
    state = load_weights(net, os.path.join(run_dir, "best.pth.tar"), "net")
    with torch.no_grad():
        metrics = pretrain_epoch(net, loaders["train"], device, generator, config, state["epoch"], phase="Train")
        metrics.update(pretrain_epoch(net, loaders["test"], device, generator, config, state["epoch"], phase="Test"))
    metrics.update(diagnostics(args, run_dir, device, net, loaders["test"].dataset, generator))
    ctx.logger.log(metrics, state["epoch"])
    print(f"evaluate best.pth.tar (epoch {state['epoch']}): {format_metrics(metrics)}")
    return metrics


def diagnostics(args, run_dir, device, net, test_set, generator):
    """Distance-vs-IoU scatter with its Spearman correlation and a PCA of box embeddings (PNGs)."""
    ious, distances, embeddings = distance_vs_iou(net, test_set, device, generator, norm=args.norm)
    rho = spearman(ious, distances)
    title = f"digit {args.digit} test images, {len(ious)} random boxes"
    scatter = distance_scatter(ious, distances, rho, os.path.join(run_dir, "distance_vs_iou.png"), title)
    projection = embedding_projection(embeddings, ious, os.path.join(run_dir, "embedding_pca.png"), title)
    print(f"Spearman rank correlation of embedding distance and IoU: {rho:.3f} (ideal -1) -> {scatter}, {projection}")
    return {"Test Spearman Distance IoU": rho, "Test Distance vs IoU": scatter, "Test Embedding PCA": projection}


def run_epoch(ctx, net, config, optimizer, epoch):
    """Train, then evaluate on the validation split (with --val_split) and the test split."""
    loaders, device, generators = ctx.loaders, ctx.device, ctx.generators
    metrics = pretrain_epoch(net, loaders["train"], device, generators["sampler"], config, epoch, optimizer)
    with torch.no_grad():
        if loaders["val"] is not None:
            metrics.update(pretrain_epoch(net, loaders["val"], device, generators["eval"], config, epoch, phase="Val"))
        metrics.update(pretrain_epoch(net, loaders["test"], device, generators["eval"], config, epoch, phase="Test"))
    return metrics


def train(ctx, net, config):
    """The epochs: StepLR(--step); best.pth.tar on a strictly better Ord Acc Inst (validation split with
    --val_split, else test), last.pth.tar after every epoch; stops after more than --patience epochs
    without a better one."""
    args, run_dir = ctx.args, ctx.run_dir
    optimizer = make_optimizer(args.optimizer, net.parameters(), args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.step, gamma=0.1)
    policy = CheckpointPolicy(selection="Val Ord Acc Inst" if ctx.loaders["val"] is not None else "Test Ord Acc Inst",
                              last=LAST_EVERY_EPOCH, patience=args.patience)

    def save(kind):
        path = os.path.join(run_dir, f"{kind}.pth.tar")
        return lambda epoch, metrics: save_checkpoint(model_checkpoint(epoch, net, metrics[policy.selection]), path)

    return fit(ctx, lambda epoch, final: run_epoch(ctx, net, config, optimizer, epoch), policy, {"net": net}, {"net": optimizer},
               {"net": scheduler}, save_best=save("best"), save_last=save("last"), line=EPOCH_LINE).metrics


def run(args, run_dir):
    ctx = RunContext(args, run_dir, "pretrain", build_loaders, selection=SELECTION["pretrain"], free_flags=FREE_FLAGS)
    net = Net(args.pooling_size, args.pooling_mode).to(ctx.device)
    if args.compile:
        compile_models(net)
    config = PretrainConfig.from_args(args)
    try:
        metrics = evaluate_only(ctx, net, config) if args.evaluate else train(ctx, net, config)
        draw_run_curves(ctx.run_dir)
        return metrics
    finally:
        ctx.logger.finish()


def main(argv=None):
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse_args)


if __name__ == "__main__":
    main()
