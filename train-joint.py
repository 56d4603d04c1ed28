"""Joint training of the recurrent policy agent and the embedding net (docs/method.md §7)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import os

import torch

from models import Net
from models.agent import AGENTS, agent_record, record_mismatch
from models.net import EMBED_DIM, FEATURE_CHANNELS
from utils.data.datasets import ClutteredMNIST
from utils.errors import CheckpointError
from utils.data.loaders import build_loaders, make_loader
from utils.localization.evaluation import evaluate_split
from utils.localization.rollout import rollout
from utils.method2021.config import JointConfig, rollout_config
from utils.method2021.epochs import joint_epoch
from utils.method2021.evaluation import digit_row, write_table
from utils.method2021.flags import FREE_FLAGS, SELECTION, parse_args
from utils.plots import draw_run_curves, iou_histogram, trajectory_figure, trajectory_gif
from utils.run.checkpoints import load_checkpoint, load_weights, model_checkpoint, resolve_checkpoint, save_checkpoint
from utils.run.context import RunContext
from utils.run.folder import check_inputs
from utils.run.entry import script_main
from utils.run.logging import EpochLine, Histogram, format_metrics
from utils.run.loop import LAST_AT_END, CheckpointPolicy, current_lr, fit, make_optimizer
from utils.run.speed import compile_models

DEFAULT_SAVENAME = "cluttermnist_joint"
# the figures of the line printed per epoch (every figure with --log_all 1)
EPOCH_LINE = EpochLine("CorLoc", train="Train Loc Acc", test="Test Loc Acc", loss="Train Pol Loss")
CHECKPOINTS = {"net": "{kind}_net.pth.tar", "agent": "{kind}_agent.pth.tar"}


def build_models(args, device):
    """Net (from --pretrained unless evaluating) and agent; --freeze 1 turns the net's gradients off."""
    net = Net(args.pooling_size, args.pooling_mode)
    if args.pretrained and not args.evaluate:
        path = resolve_checkpoint(args.pretrained, args.saveroot, "--pretrained")
        state = load_weights(net, path, "net")
        print(f"pretrained net: {path} (epoch {state.get('epoch')}, acc {state.get('acc')})")
    elif not args.evaluate:
        print("WARNING: no --pretrained checkpoint; the embedding net starts from random weights")
    agent = AGENTS[args.agent].from_args(args, EMBED_DIM, FEATURE_CHANNELS)
    if args.freeze:
        net.requires_grad_(False)
    net, agent = net.to(device), agent.to(device)
    if args.compile:
        compile_models(net, agent)
    return net, agent


def test_pass(ctx, net, agent, config, loader, epoch, phase="Test", figure=False):
    """Metrics with sampled actions (the original), plus `{phase} Loc Acc Greedy` with --greedy 1.
    Draws come from the run's evaluation stream, never the training one; the greedy pass's (its
    step pairs) from the freshly seeded "greedy" stream, so --greedy 1 changes no other figure. `IoU Distribution` is a
    wandb histogram; `figure` also draws it as a PNG (slow: once per run, not per epoch)."""
    run_pass = lambda policy, generator, name: joint_epoch(net, agent, loader, ctx.device, generator, config, epoch, phase=name,
                                                           policy=policy)
    metrics, passes = evaluate_split(run_pass, phase, ctx.generators["eval"], ctx.fresh_generator("greedy") if ctx.args.greedy else None)
    extras = passes["sample"]
    metrics[f"{phase} IoU Distribution"] = Histogram(extras["pair_ious"])
    if figure:
        metrics[f"{phase} IoU Distribution Figure"] = iou_histogram(
            extras["pair_ious"], os.path.join(ctx.run_dir, f"iou_distribution_{phase.lower()}.png"), f"{phase}, epoch {epoch}")
    return metrics


def save_pair(kind, epoch, net, agent, acc, run_dir):
    for name, model, record in (("net", net, {}), ("agent", agent, agent_record(agent))):
        save_checkpoint(model_checkpoint(epoch, model, acc, **record), os.path.join(run_dir, CHECKPOINTS[name].format(kind=kind)))


def make_updaters(args, net, agent):
    """Optimisers and schedulers: net MultiStepLR(--steps; none: constant), agent StepLR(--step_ag); no net ones with --freeze 1."""
    net_optimizer = None if args.freeze else make_optimizer(args.optimizer, net.parameters(), args.lr)
    agent_optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    optimizers = {"net": net_optimizer, "agent": agent_optimizer}
    schedulers = {
        "net": None if args.freeze else torch.optim.lr_scheduler.MultiStepLR(net_optimizer, milestones=args.steps or [], gamma=0.1),
        "agent": torch.optim.lr_scheduler.StepLR(agent_optimizer, step_size=args.step_ag, gamma=0.1),
    }
    return optimizers, schedulers


def run_epoch(ctx, net, agent, config, optimizers, epoch, figure=False):
    """Train, then evaluate on the validation split (with --val_split) and the test split; `figure`
    (a run's last epoch) also draws the IoU distributions as PNGs."""
    metrics, extras = joint_epoch(net, agent, ctx.loaders["train"], ctx.device, ctx.generators["sampler"], config, epoch,
                                  (optimizers["net"], optimizers["agent"]))
    metrics["Train IoU Distribution"] = Histogram(extras["pair_ious"])
    if figure:
        metrics["Train IoU Distribution Figure"] = iou_histogram(
            extras["pair_ious"], os.path.join(ctx.run_dir, "iou_distribution_train.png"), f"Train, epoch {epoch}")
    if ctx.loaders["val"] is not None:
        metrics.update(test_pass(ctx, net, agent, config, ctx.loaders["val"], epoch, phase="Val", figure=figure))
    metrics.update(test_pass(ctx, net, agent, config, ctx.loaders["test"], epoch, figure=figure))
    return metrics


def learning_rates(optimizers):
    """The original logs the agent's learning rate as `learning rate` (read before the schedulers step)."""
    net_optimizer = optimizers["net"]
    return {"learning rate": current_lr(optimizers["agent"]),
            "learning rate net": current_lr(net_optimizer) if net_optimizer is not None else 0.0}


def train(ctx, net, agent, config):
    """The epochs: schedulers step after each; the best pair on a strictly better Loc Acc (validation
    split with --val_split, else test), the last pair once at the end (resume.pth.tar holds every
    epoch's state); stops after more than --patience epochs without a better one."""
    args, run_dir = ctx.args, ctx.run_dir
    optimizers, schedulers = make_updaters(args, net, agent)
    policy = CheckpointPolicy(selection="Val Loc Acc" if ctx.loaders["val"] is not None else "Test Loc Acc", last=LAST_AT_END,
                              patience=args.patience)

    def save(kind):
        return lambda epoch, metrics: save_pair(kind, epoch, net, agent, metrics[policy.selection], run_dir)

    def run_epoch_of_fit(epoch, final):  # the last epoch, or one after which the run stops unless it improves: draw the figures
        return run_epoch(ctx, net, agent, config, optimizers, epoch, figure=final)

    return fit(ctx, run_epoch_of_fit, policy, {"net": net, "agent": agent}, optimizers, schedulers, save_best=save("best"),
               save_last=save("last"), line=EPOCH_LINE, learning_rates=learning_rates).metrics


def cross_digit_table(ctx, net, agent):
    """Evaluates every --eval_digits test split (default: --digit) -> rows; writes CSV and Markdown."""
    args, run_dir, device = ctx.args, ctx.run_dir, ctx.device
    config = rollout_config(args)
    rows = []
    for digit in args.eval_digits or [args.digit]:
        test_set = ClutteredMNIST(args.datapath, digit, "test")
        loader = make_loader(test_set, args.batch_size, False, None, args.workers, device)
        rows.append(digit_row(net, agent, loader, device, config, digit, args.digit, ctx.generators["eval"]))
    table = write_table(rows, os.path.join(run_dir, "cross_digit.csv"), os.path.join(run_dir, "cross_digit.md"))
    print(f"localization by digit (trained on {args.digit}; {run_dir}/cross_digit.md):\n{table}")
    return rows


def visualize(ctx, net, agent, test_set):
    """Draws the sampled trajectories of the first --visualize test images (PNG, and a GIF of T + 1 frames) -> PNG path."""
    args, run_dir, device = ctx.args, ctx.run_dir, ctx.device
    config = rollout_config(args)
    count = min(args.visualize, len(test_set))
    images, targets = test_set[list(range(count))]
    net.eval()
    agent.eval()
    with torch.no_grad():
        with config.precision.autocast(device):
            features = net.features(images.to(device))
        episode = rollout(net, agent, features, config, "sample", ctx.generators["eval"])
    path = os.path.join(run_dir, "trajectories.png")
    drawn = (test_set.images[:count].numpy(), episode.boxes.cpu(), episode.actions.cpu(), targets)
    trajectory_figure(*drawn, path, f"digit {args.digit}, test images 0..{count - 1}: agent (red), ground truth (green)")
    animation = trajectory_gif(*drawn, os.path.join(run_dir, "trajectories.gif"), f"digit {args.digit}")
    print(f"trajectories of {count} test images -> {path}, {animation}")
    return path


def evaluate_only(ctx, net, agent, config):
    """`--evaluate 1`: loads best_net/best_agent, reports the test metrics, baselines and table."""
    args, run_dir, logger = ctx.args, ctx.run_dir, ctx.logger
    state = load_weights(net, os.path.join(run_dir, "best_net.pth.tar"), "net")
    agent_path = os.path.join(run_dir, "best_agent.pth.tar")
    mismatch = record_mismatch(load_checkpoint(agent_path), agent)
    if mismatch:
        raise CheckpointError(f"{agent_path}: {mismatch}; evaluate with the flags the run was trained with")
    load_weights(agent, agent_path, "agent")
    metrics = test_pass(ctx, net, agent, config, ctx.loaders["test"], state["epoch"], figure=True)
    rows = cross_digit_table(ctx, net, agent)
    own = next((row for row in rows if row["digit"] == args.digit), None)
    if own is not None:
        metrics.update({"Test CorLoc whole image": own["CorLoc whole image"], "Test CorLoc random policy": own["CorLoc random policy"]})
    if args.visualize:
        metrics["Trajectories"] = visualize(ctx, net, agent, ctx.loaders["test"].dataset)
    logger.log(metrics, state["epoch"])
    logger.table("Cross-digit localization", rows, state["epoch"])
    print(f"evaluate best pair (epoch {state['epoch']}): {format_metrics(metrics)}")
    if own is not None:
        print(f"Test Loc Acc (CorLoc), digit {args.digit}: {metrics['Test Loc Acc']:.1f}% sampled, {own['CorLoc greedy']:.1f}% greedy"
              f" | whole-image box {own['CorLoc whole image']:.1f}% | random policy {own['CorLoc random policy']:.1f}%")
    return metrics


def run(args, run_dir):
    ctx = RunContext(args, run_dir, "joint", build_loaders, selection=SELECTION["joint"], free_flags=FREE_FLAGS)
    if not args.evaluate:  # a resumed run continues from the checkpoint it started from, or from none
        check_inputs(run_dir, {"--pretrained": resolve_checkpoint(args.pretrained, args.saveroot, "--pretrained")},
                     resuming=ctx.resume is not None)
    net, agent = build_models(args, ctx.device)
    config = JointConfig.from_args(args)
    try:
        metrics = evaluate_only(ctx, net, agent, config) if args.evaluate else train(ctx, net, agent, config)
        draw_run_curves(ctx.run_dir)
        return metrics
    finally:
        ctx.logger.finish()


def main(argv=None):
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse_args)


if __name__ == "__main__":
    main()
