"""Joint training of the recurrent policy agent and the embedding net (SPEC §7)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.startup import quiet_ctrl_c

    quiet_ctrl_c()

import os

import torch

from models import Agent, Net
from models.net import EMBED_DIM
from utils.checkpoint import CheckpointError, load_weights, model_checkpoint, save_checkpoint
from utils.data import ClutteredMNIST, make_loader
from utils.engine import joint_epoch, rollout
from utils.evaluation import digit_row, write_table
from utils.logging import format_metrics
from utils.plots import iou_histogram, trajectory_figure
from utils.resume import apply_resume, save_resume
from utils.runtime import RunContext, current_lr, make_optimizer, script_main

DEFAULT_SAVENAME = "cluttermnist_joint"
CHECKPOINTS = {"net": "{kind}_net.pth.tar", "agent": "{kind}_agent.pth.tar"}


def resolve_pretrained(path, saveroot):
    """`--pretrained` as given when absolute or present, else relative to --saveroot."""
    for candidate in (path, os.path.join(saveroot, path)):
        if os.path.isfile(candidate):
            return candidate
    raise CheckpointError(f"--pretrained {path}: not found (looked at {path} and {os.path.join(saveroot, path)})")


def build_models(args, device):
    """Net (from --pretrained unless evaluating) and agent; --freeze 1 turns the net's gradients off."""
    net = Net(args.pooling_size, args.pooling_mode)
    if args.pretrained and not args.evaluate:
        path = resolve_pretrained(args.pretrained, args.saveroot)
        state = load_weights(net, path, "net")
        print(f"pretrained net: {path} (epoch {state.get('epoch')}, acc {state.get('acc')})")
    elif not args.evaluate:
        print("WARNING: no --pretrained checkpoint; the embedding net starts from random weights")
    agent = Agent(EMBED_DIM, args.num_act, args.hidden_size)
    if args.freeze:
        net.requires_grad_(False)
    return net.to(device), agent.to(device)


def test_pass(net, agent, loader, device, generator, args, epoch, run_dir, phase="Test"):
    """Metrics with sampled actions (the original), plus `{phase} Loc Acc Greedy` with --greedy 1."""
    with torch.no_grad():
        metrics, extras = joint_epoch(net, agent, loader, device, generator, args, epoch, phase=phase)
        if args.greedy:
            greedy, _ = joint_epoch(net, agent, loader, device, generator, args, epoch, phase="Greedy", policy="greedy")
            metrics[f"{phase} Loc Acc Greedy"] = greedy["Greedy Loc Acc"]
    metrics[f"{phase} IoU Distribution"] = iou_histogram(
        extras["pair_ious"], os.path.join(run_dir, f"iou_distribution_{phase.lower()}.png"), f"{phase}, epoch {epoch}")
    return metrics


def save_pair(kind, epoch, net, agent, acc, run_dir):
    for name, model in (("net", net), ("agent", agent)):
        save_checkpoint(model_checkpoint(epoch, model, acc), os.path.join(run_dir, CHECKPOINTS[name].format(kind=kind)))


def make_updaters(args, net, agent):
    """Optimisers and schedulers: net MultiStepLR(--steps), agent StepLR(--step_ag); no net ones with --freeze 1."""
    net_optimizer = None if args.freeze else make_optimizer(args.optimizer, net.parameters(), args.lr)
    agent_optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    optimizers = {"net": net_optimizer, "agent": agent_optimizer}
    schedulers = {
        "net": None if args.freeze else torch.optim.lr_scheduler.MultiStepLR(net_optimizer, milestones=args.steps, gamma=0.1),
        "agent": torch.optim.lr_scheduler.StepLR(agent_optimizer, step_size=args.step_ag, gamma=0.1),
    }
    return optimizers, schedulers


def run_epoch(args, run_dir, device, loaders, net, agent, generator, optimizers, epoch):
    """Train, then evaluate on the validation split (with --val_split) and the test split."""
    metrics, extras = joint_epoch(net, agent, loaders["train"], device, generator, args, epoch, (optimizers["net"], optimizers["agent"]))
    metrics["Train IoU Distribution"] = iou_histogram(
        extras["pair_ious"], os.path.join(run_dir, "iou_distribution_train.png"), f"Train, epoch {epoch}")
    if loaders["val"] is not None:
        metrics.update(test_pass(net, agent, loaders["val"], device, generator, args, epoch, run_dir, phase="Val"))
    metrics.update(test_pass(net, agent, loaders["test"], device, generator, args, epoch, run_dir))
    return metrics


def train(args, run_dir, device, loaders, net, agent, generators, logger, resume):
    optimizers, schedulers = make_updaters(args, net, agent)
    modules = {"net": net, "agent": agent}
    selection = "Val Loc Acc" if loaders["val"] is not None else "Test Loc Acc"
    start, progress = 0, {"best": float("-inf")}
    if resume is not None:
        start, progress = apply_resume(resume, modules, optimizers, schedulers, generators)
        print(f"resumed after epoch {start - 1} (best {selection} {progress['best']:.2f})")
    logger.drop_epochs_from(start)
    metrics = {}
    for epoch in range(start, args.epochs):
        lr = current_lr(optimizers["net"]) if optimizers["net"] is not None else 0.0
        metrics = run_epoch(args, run_dir, device, loaders, net, agent, generators["sampler"], optimizers, epoch)
        for scheduler in schedulers.values():
            if scheduler is not None:
                scheduler.step()
        metrics.update({"learning rate": lr, "learning rate agent": current_lr(optimizers["agent"])})
        logger.log(metrics, epoch)
        acc = metrics[selection]
        improved = acc > progress["best"]
        if improved:
            progress["best"] = acc
            save_pair("best", epoch, net, agent, acc, run_dir)
        save_pair("last", epoch, net, agent, acc, run_dir)
        save_resume(run_dir, epoch, args, modules, optimizers, schedulers, generators, {**progress, "wandb_id": logger.run_id})
        print(f"epoch {epoch:3d} | {format_metrics(metrics)}{' | best' if improved else ''}", flush=True)
    print(f"best {selection} {progress['best']:.2f} -> {os.path.join(run_dir, 'best_net.pth.tar')}, best_agent.pth.tar")
    return metrics


def cross_digit_table(args, run_dir, device, net, agent):
    """Evaluates every --eval_digits test split (default: --digit) -> rows; writes CSV and Markdown."""
    rows = []
    for digit in args.eval_digits or [args.digit]:
        test_set = ClutteredMNIST(args.datapath, digit, "test")
        loader = make_loader(test_set, args.batch_size, False, None, args.workers, device)
        rows.append(digit_row(net, agent, loader, device, args, digit, args.digit))
    table = write_table(rows, os.path.join(run_dir, "cross_digit.csv"), os.path.join(run_dir, "cross_digit.md"))
    print(f"localization by digit (trained on {args.digit}; {run_dir}/cross_digit.md):\n{table}")
    return rows


def visualize(args, run_dir, device, net, agent, test_set):
    """Draws the sampled trajectories of the first --visualize test images -> PNG path."""
    count = min(args.visualize, len(test_set))
    images, targets = test_set[list(range(count))]
    net.eval()
    agent.eval()
    with torch.no_grad():
        features = net.features(images.to(device))
        episode = rollout(net, agent, features, args.seq_len, args.num_act, args.min_box_side, "sample", args.norm)
    path = os.path.join(run_dir, "trajectories.png")
    trajectory_figure(test_set.images[:count].numpy(), episode.boxes.cpu(), episode.actions.cpu(), targets, path,
                      f"digit {args.digit}, test images 0..{count - 1}: agent (red), ground truth (green)")
    print(f"trajectories of {count} test images -> {path}")
    return path


def evaluate_only(args, run_dir, device, loaders, net, agent, generators, logger):
    """`--evaluate 1`: loads best_net/best_agent, reports the test metrics, baselines and table."""
    state = load_weights(net, os.path.join(run_dir, "best_net.pth.tar"), "net")
    load_weights(agent, os.path.join(run_dir, "best_agent.pth.tar"), "agent")
    metrics = test_pass(net, agent, loaders["test"], device, generators["sampler"], args, state["epoch"], run_dir)
    rows = cross_digit_table(args, run_dir, device, net, agent)
    own = next((row for row in rows if row["digit"] == args.digit), None)
    if own is not None:
        metrics.update({"Test CorLoc whole image": own["CorLoc whole image"], "Test CorLoc random policy": own["CorLoc random policy"]})
    if args.visualize:
        metrics["Trajectories"] = visualize(args, run_dir, device, net, agent, loaders["test"].dataset)
    logger.log(metrics, state["epoch"])
    logger.table("Cross-digit localization", rows, state["epoch"])
    print(f"evaluate best pair (epoch {state['epoch']}): {format_metrics(metrics)}")
    if own is not None:
        print(f"Test Loc Acc (CorLoc), digit {args.digit}: {metrics['Test Loc Acc']:.1f}% sampled, {own['CorLoc greedy']:.1f}% greedy"
              f" | whole-image box {own['CorLoc whole image']:.1f}% | random policy {own['CorLoc random policy']:.1f}%")
    return metrics


def run(args, run_dir):
    ctx = RunContext(args, run_dir, job_type="joint")
    net, agent = build_models(args, ctx.device)
    try:
        if args.evaluate:
            return evaluate_only(args, run_dir, ctx.device, ctx.loaders, net, agent, ctx.generators, ctx.logger)
        return train(args, run_dir, ctx.device, ctx.loaders, net, agent, ctx.generators, ctx.logger, ctx.resume)
    finally:
        ctx.logger.finish()


def main(argv=None):
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__))


if __name__ == "__main__":
    main()
