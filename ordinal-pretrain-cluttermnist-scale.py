"""Ordinal pretraining of the RoI embedding net on one digit of cluttered MNIST (SPEC §4)."""

import os

import torch

from models import Net
from utils.args import parse_args
from utils.checkpoint import CheckpointError, load_weights, model_checkpoint, save_checkpoint
from utils.data import ClutteredMNIST, DataError, make_loader
from utils.engine import NonFiniteLoss, pretrain_epoch
from utils.logging import RunLogger, format_metrics
from utils.runtime import current_lr, fail, make_generator, make_optimizer, pick_device, run_folder, seed_everything

DEFAULT_SAVENAME = "cluttermnist_pretrain"


def build(args, device):
    """Data loaders, net and the box sampler's generator of a run."""
    train_set = ClutteredMNIST(args.datapath, args.digit, "train")
    test_set = ClutteredMNIST(args.datapath, args.digit, "test")
    shuffle_generator = torch.Generator().manual_seed(args.seed)
    train_loader = make_loader(train_set, args.batch_size, True, shuffle_generator, args.workers, device)
    test_loader = make_loader(test_set, args.batch_size, False, None, args.workers, device)
    net = Net(args.pooling_size, args.pooling_mode).to(device)
    print(f"data: digit {args.digit}, {len(train_set)} train / {len(test_set)} test images from {args.datapath}")
    return train_loader, test_loader, net, make_generator(device, args.seed + 1)


def evaluate_only(args, run_dir, device, loaders, net, generator, logger):
    """`--evaluate 1`: loads best.pth.tar and reports train and test metrics."""
    state = load_weights(net, os.path.join(run_dir, "best.pth.tar"), "net")
    with torch.no_grad():
        metrics = pretrain_epoch(net, loaders[0], device, generator, args, state["epoch"], phase="Train")
        metrics.update(pretrain_epoch(net, loaders[1], device, generator, args, state["epoch"], phase="Test"))
    logger.log(metrics, state["epoch"])
    print(f"evaluate best.pth.tar (epoch {state['epoch']}): {format_metrics(metrics)}")
    return metrics


def train(args, run_dir, device, loaders, net, generator, logger):
    optimizer = make_optimizer(args.optimizer, net.parameters(), args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.step, gamma=0.1)
    best_acc, epochs_without_gain, metrics = float("-inf"), 0, {}
    for epoch in range(args.epochs):
        lr = current_lr(optimizer)
        metrics = pretrain_epoch(net, loaders[0], device, generator, args, epoch, optimizer)
        scheduler.step()
        with torch.no_grad():
            metrics.update(pretrain_epoch(net, loaders[1], device, generator, args, epoch))
        metrics["learning rate"] = lr
        logger.log(metrics, epoch)
        acc = metrics["Test Ord Acc Inst"]
        improved = acc > best_acc
        if improved:
            best_acc, epochs_without_gain = acc, 0
            save_checkpoint(model_checkpoint(epoch, net, acc), os.path.join(run_dir, "best.pth.tar"))
        else:
            epochs_without_gain += 1
        save_checkpoint(model_checkpoint(epoch, net, acc), os.path.join(run_dir, "last.pth.tar"))
        print(f"epoch {epoch:3d} | {format_metrics(metrics)}{' | best' if improved else ''}", flush=True)
        if epochs_without_gain > args.patience:
            print(f"early stop: no gain in Test Ord Acc Inst for {epochs_without_gain} epochs")
            break
    print(f"best Test Ord Acc Inst {best_acc:.2f} -> {os.path.join(run_dir, 'best.pth.tar')}")
    return metrics


def run(args):
    device = pick_device(args.device)
    seed_everything(args.seed)
    run_dir = run_folder(args.saveroot, args.savename, DEFAULT_SAVENAME)
    print(f"run folder {run_dir} | device {device} | args {vars(args)}")
    train_loader, test_loader, net, generator = build(args, device)
    logger = RunLogger(run_dir, vars(args), args.wandb_project, args.wandb_mode, job_type="pretrain")
    try:
        if args.evaluate:
            return evaluate_only(args, run_dir, device, (train_loader, test_loader), net, generator, logger)
        return train(args, run_dir, device, (train_loader, test_loader), net, generator, logger)
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
