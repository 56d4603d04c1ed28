"""Joint training of the recurrent policy agent and the embedding net (SPEC §7)."""

import os

import torch

from models import Agent, Net
from models.net import EMBED_DIM
from utils.args import parse_args
from utils.checkpoint import CheckpointError, load_weights, model_checkpoint, save_checkpoint
from utils.data import ClutteredMNIST, DataError, make_loader
from utils.engine import NonFiniteLoss, joint_epoch
from utils.logging import RunLogger, format_metrics
from utils.plots import iou_histogram
from utils.runtime import current_lr, fail, make_generator, make_optimizer, pick_device, run_folder, seed_everything

DEFAULT_SAVENAME = "cluttermnist_joint"
CHECKPOINTS = {"net": "{kind}_net.pth.tar", "agent": "{kind}_agent.pth.tar"}


def resolve_pretrained(path, saveroot):
    """`--pretrained` as given when absolute or present, else relative to --saveroot."""
    for candidate in (path, os.path.join(saveroot, path)):
        if os.path.isfile(candidate):
            return candidate
    raise CheckpointError(f"--pretrained {path}: not found (looked at {path} and {os.path.join(saveroot, path)})")


def build(args, device):
    train_set = ClutteredMNIST(args.datapath, args.digit, "train")
    test_set = ClutteredMNIST(args.datapath, args.digit, "test")
    shuffle_generator = torch.Generator().manual_seed(args.seed)
    loaders = (
        make_loader(train_set, args.batch_size, True, shuffle_generator, args.workers, device),
        make_loader(test_set, args.batch_size, False, None, args.workers, device),
    )
    print(f"data: digit {args.digit}, {len(train_set)} train / {len(test_set)} test images from {args.datapath}")
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
    return loaders, net.to(device), agent.to(device), make_generator(device, args.seed + 1)


def test_pass(net, agent, loader, device, generator, args, epoch, run_dir):
    """Test metrics with sampled actions (the original), plus `Test Loc Acc Greedy` with --greedy 1."""
    with torch.no_grad():
        metrics, extras = joint_epoch(net, agent, loader, device, generator, args, epoch)
        if args.greedy:
            greedy, _ = joint_epoch(net, agent, loader, device, generator, args, epoch, phase="Greedy", policy="greedy")
            metrics["Test Loc Acc Greedy"] = greedy["Greedy Loc Acc"]
    metrics["Test IoU Distribution"] = iou_histogram(
        extras["pair_ious"], os.path.join(run_dir, "iou_distribution_test.png"), f"Test, epoch {epoch}")
    return metrics


def save_pair(kind, epoch, net, agent, acc, run_dir):
    for name, model in (("net", net), ("agent", agent)):
        save_checkpoint(model_checkpoint(epoch, model, acc), os.path.join(run_dir, CHECKPOINTS[name].format(kind=kind)))


def train(args, run_dir, device, loaders, net, agent, generator, logger):
    net_optimizer = None if args.freeze else make_optimizer(args.optimizer, net.parameters(), args.lr)
    agent_optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    schedulers = [torch.optim.lr_scheduler.StepLR(agent_optimizer, step_size=args.step_ag, gamma=0.1)]
    if net_optimizer is not None:
        schedulers.append(torch.optim.lr_scheduler.MultiStepLR(net_optimizer, milestones=args.steps, gamma=0.1))
    best_acc, metrics = float("-inf"), {}
    for epoch in range(args.epochs):
        lr = current_lr(net_optimizer) if net_optimizer is not None else 0.0
        metrics, extras = joint_epoch(net, agent, loaders[0], device, generator, args, epoch, (net_optimizer, agent_optimizer))
        for scheduler in schedulers:
            scheduler.step()
        metrics["Train IoU Distribution"] = iou_histogram(
            extras["pair_ious"], os.path.join(run_dir, "iou_distribution_train.png"), f"Train, epoch {epoch}")
        metrics.update(test_pass(net, agent, loaders[1], device, generator, args, epoch, run_dir))
        metrics.update({"learning rate": lr, "learning rate agent": current_lr(agent_optimizer)})
        logger.log(metrics, epoch)
        acc = metrics["Test Loc Acc"]
        improved = acc > best_acc
        if improved:
            best_acc = acc
            save_pair("best", epoch, net, agent, acc, run_dir)
        save_pair("last", epoch, net, agent, acc, run_dir)
        print(f"epoch {epoch:3d} | {format_metrics(metrics)}{' | best' if improved else ''}", flush=True)
    print(f"best Test Loc Acc {best_acc:.2f} -> {os.path.join(run_dir, 'best_net.pth.tar')}, best_agent.pth.tar")
    return metrics


def evaluate_only(args, run_dir, device, loaders, net, agent, generator, logger):
    """`--evaluate 1`: loads best_net/best_agent and reports the test metrics."""
    state = load_weights(net, os.path.join(run_dir, "best_net.pth.tar"), "net")
    load_weights(agent, os.path.join(run_dir, "best_agent.pth.tar"), "agent")
    metrics = test_pass(net, agent, loaders[1], device, generator, args, state["epoch"], run_dir)
    logger.log(metrics, state["epoch"])
    print(f"evaluate best pair (epoch {state['epoch']}): {format_metrics(metrics)}")
    return metrics


def run(args):
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = run_folder(args.saveroot, args.savename, DEFAULT_SAVENAME)
    print(f"run folder {run_dir} | device {device} | args {vars(args)}")
    loaders, net, agent, generator = build(args, device)
    logger = RunLogger(run_dir, vars(args), args.wandb_project, args.wandb_mode, job_type="joint")
    try:
        if args.evaluate:
            return evaluate_only(args, run_dir, device, loaders, net, agent, generator, logger)
        return train(args, run_dir, device, loaders, net, agent, generator, logger)
    finally:
        logger.finish()


def main(argv=None):
    args = parse_args(argv, description=__doc__)
    try:
        return run(args)
    except (DataError, CheckpointError, NonFiniteLoss, OSError) as error:
        fail(str(error))


if __name__ == "__main__":
    main()
