"""Successor method, stage 2: train the RoI agent with a frozen pretrained encoder and the prototype
reward on one background kind and digit (docs/method.md §10.9)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import os

import torch

from utils.localization.evaluation import baseline_corloc, too_small_share
from utils.localization.rollout import corloc
from utils.plots import draw_run_curves
from utils.run.checkpoints import load_checkpoint, load_weights, resolve_checkpoint, save_checkpoint
from utils.run.context import RunContext
from utils.run.entry import script_main
from utils.run.folder import check_inputs
from utils.run.logging import EpochLine
from utils.run.loop import LAST_AT_END, CheckpointPolicy, fit, make_optimizer, report_summary
from utils.successor.agents import agent_checkpoint, build_agent, evaluation_pass, load_encoder
from utils.successor.config import AgentConfig
from utils.successor.data import build_frozen_encoder, build_prototype_loaders, other_digit_test_loaders, record_lists, record_subset
from utils.successor.epochs import agent_epoch
from utils.successor.flags import FREE_FLAGS, parse_successor_args

DEFAULT_SAVENAME = "agent_mnist_ae"
# the figures of the line printed per epoch (every figure with --log_all 1)
EPOCH_LINE = EpochLine("CorLoc", train="Train Loc Acc", test="Test Loc Acc", loss="Train Pol Loss")
SELECTION = "Test Loc Acc"


def generalisation_acc(ctx, frozen, agent, config):
    """CorLoc of `agent` on the test splits of the other nine digits (same background) -> (mean, digits)."""
    generator = ctx.fresh_generator("summary")  # the same draws in training and under --evaluate
    accs = {}
    for digit, loader in other_digit_test_loaders(ctx.args, ctx.device, rows=True):
        with torch.no_grad():
            _, extras = agent_epoch(frozen, agent, loader, ctx.device, generator, config, 0, phase="Gen")
        frozen.release(loader.dataset.dataset)  # evaluated once: its maps need not stay
        accs[digit] = corloc(extras["final_ious"])
    return (sum(accs.values()) / len(accs) if accs else float("nan")), accs


def final_summary(ctx, frozen, agent, config, step):
    """`Test Best Loc Acc` (stored), `Test Last Loc Acc`, and `Test Gen Acc`: the best agent's mean
    CorLoc over the other nine digits of the same background."""
    run_dir = ctx.run_dir
    summary = {}
    for kind in ("last", "best"):
        path = os.path.join(run_dir, f"{kind}.pth.tar")
        if os.path.isfile(path):
            summary[f"Test {kind.title()} Loc Acc"] = float(load_checkpoint(path)["acc"])
    state = load_weights(agent, os.path.join(run_dir, "best.pth.tar"), "agent")
    summary["Test Best Epoch"] = int(state["epoch"])
    if ctx.args.dataset != "mnist":  # no other digits; the baselines of the test list (small objects cap CorLoc)
        targets = [t for _, t in ctx.loaders["test"]]
        summary.update(baseline_corloc(targets, config.rollout, ctx.fresh_generator("summary"), ctx.device))
        summary["Test Share Too Small"] = too_small_share(ctx.loaders["test"].dataset.targets, config.rollout.min_box_side)
        return report_summary(ctx, summary, step, f"summary (best chosen on test {SELECTION})")
    summary["Test Gen Acc"], per_digit = generalisation_acc(ctx, frozen, agent, config)
    summary.update({f"Test Gen Acc digit {digit}": acc for digit, acc in per_digit.items()})
    return report_summary(ctx, summary, step, f"summary (best chosen on test {SELECTION}; Gen over {len(per_digit)} other digits)")


def train(ctx, frozen, agent, config, encoder_path):
    args, run_dir = ctx.args, ctx.run_dir
    optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.steps_ag, gamma=0.1)
    loaders, device = ctx.loaders, ctx.device

    def run_epoch(epoch, final):
        metrics, _ = agent_epoch(frozen, agent, loaders["train"], device, ctx.generators["sampler"], config, epoch, optimizer)
        metrics.update(evaluation_pass(ctx, frozen, agent, config, loaders["test"], epoch))
        return metrics

    def save(kind):
        return lambda epoch, metrics: save_checkpoint(agent_checkpoint(epoch, agent, metrics[SELECTION], args, encoder_path),
                                                      os.path.join(run_dir, f"{kind}.pth.tar"))

    policy = CheckpointPolicy(selection=SELECTION, last=LAST_AT_END, patience=args.patience)  # the original writes last.pth.tar once
    return fit(ctx, run_epoch, policy, {"agent": agent}, {"agent": optimizer}, {"agent": scheduler}, save_best=save("best"),
               save_last=save("last"), line=EPOCH_LINE).last_epoch


def run(args, run_dir):
    loaders = lambda args, device, generator: build_prototype_loaders(args, device, generator, rows=True)
    ctx = RunContext(args, run_dir, "train_agent", loaders, selection=(SELECTION,), free_flags=FREE_FLAGS)
    record_subset(run_dir, "sample_inds", ctx.loaders["train"].dataset.dataset)
    record_lists(run_dir, ctx.loaders)
    encoder_path = resolve_checkpoint(args.pretrained, args.saveroot, "--pretrained")
    if not args.evaluate:
        check_inputs(run_dir, {"--pretrained": encoder_path}, resuming=ctx.resume is not None)
    encoder = load_encoder(encoder_path, args, ctx.device, run_dir)
    agent = build_agent(args, ctx.device)
    config = AgentConfig.from_args(args)
    frozen = build_frozen_encoder(ctx, encoder, config.rollout.precision, ("train", "test"))
    try:
        last_epoch = None if args.evaluate else train(ctx, frozen, agent, config, encoder_path)
        if args.evaluate:
            last_epoch = load_checkpoint(os.path.join(run_dir, "best.pth.tar"))["epoch"]
        summary = final_summary(ctx, frozen, agent, config, (last_epoch or 0) + 1)
        draw_run_curves(ctx.run_dir)
        frozen.report()
        return summary
    finally:
        ctx.logger.finish()


def main(argv=None):
    needs = {"pretrained": "the encoder checkpoint of pretrain_encoder_ordinal.py (e.g. pretrain_mnist_ae/best.pth.tar)"}
    parse = lambda argv, description: parse_successor_args(argv, description, needs=needs, stage="agent")
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse)


if __name__ == "__main__":
    main()
