"""Successor method, stage 2: train the RoI agent with a frozen pretrained encoder and the prototype
reward on one background kind and digit (docs/method.md, "Successor: agent training")."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import os

import torch

from utils.run.flags import parse_successor_args
from utils.successor.agents import agent_checkpoint, build_agent, evaluation_pass, load_encoder
from utils.run.checkpoints import load_checkpoint, load_weights, save_checkpoint
from utils.data.corrupted import build_prototype_loaders, other_digit_test_loaders, record_subset
from utils.data.datasets import DataError
from utils.successor.epochs import AgentConfig, agent_epoch
from utils.localization.rollout import corloc
from utils.run.context import RunContext, make_optimizer, script_main
from utils.run.loop import fit, report_summary, resolve_checkpoint

DEFAULT_SAVENAME = "agent_mnist_ae"
SELECTION = "Test Loc Acc"


def generalisation_acc(ctx, encoder, agent, config):
    """CorLoc of `agent` on the test splits of the other nine digits (same background) -> (mean, digits)."""
    generator = ctx.fresh_generator("summary")  # the same draws in training and under --evaluate
    accs = {}
    for digit, loader in other_digit_test_loaders(ctx.args, ctx.device):
        with torch.no_grad():
            _, ious = agent_epoch(encoder, agent, loader, ctx.device, generator, config, 0, phase="Gen")
        accs[digit] = corloc(ious)
    return (sum(accs.values()) / len(accs) if accs else float("nan")), accs


def final_summary(ctx, encoder, agent, config, step):
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
    summary["Test Gen Acc"], per_digit = generalisation_acc(ctx, encoder, agent, config)
    summary.update({f"Test Gen Acc digit {digit}": acc for digit, acc in per_digit.items()})
    return report_summary(ctx, summary, step, f"summary (best chosen on test {SELECTION}; Gen over {len(per_digit)} other digits)")


def train(ctx, encoder, agent, config, encoder_path):
    args, run_dir = ctx.args, ctx.run_dir
    optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.steps_ag, gamma=0.1)
    loaders, device = ctx.loaders, ctx.device

    def run_epoch(epoch):
        metrics, _ = agent_epoch(encoder, agent, loaders["train"], device, ctx.generators["sampler"], config, epoch, optimizer)
        metrics.update(evaluation_pass(ctx, encoder, agent, config, loaders["test"], epoch))
        return metrics

    def save(kind):
        return lambda epoch, metrics: save_checkpoint(agent_checkpoint(epoch, agent, metrics[SELECTION], args, encoder_path),
                                                      os.path.join(run_dir, f"{kind}.pth.tar"))

    metrics, _, last_epoch = fit(ctx, run_epoch, SELECTION, {"agent": agent}, {"agent": optimizer}, {"agent": scheduler},
                                 on_best=save("best"))
    if last_epoch is not None:  # the original writes last.pth.tar once, at the end
        save("last")(last_epoch, metrics)
    return last_epoch


def run(args, run_dir):
    ctx = RunContext(args, run_dir, job_type="train_agent", loader_builder=build_prototype_loaders)
    record_subset(run_dir, "sample_inds", ctx.loaders["train"].dataset)
    if not args.pretrained:
        raise DataError("train_agent.py needs --pretrained, the encoder checkpoint of pretrain_encoder_ordinal.py (e.g. "
                        "results/pretrain_mnist_ae/best.pth.tar)")
    encoder_path = resolve_checkpoint(args.pretrained, args.saveroot, "--pretrained")
    encoder = load_encoder(encoder_path, args, ctx.device)
    agent = build_agent(args, ctx.device)
    config = AgentConfig.from_args(args)
    try:
        last_epoch = None if args.evaluate else train(ctx, encoder, agent, config, encoder_path)
        if args.evaluate:
            last_epoch = load_checkpoint(os.path.join(run_dir, "best.pth.tar"))["epoch"]
        return final_summary(ctx, encoder, agent, config, (last_epoch or 0) + 1)
    finally:
        ctx.logger.finish()


def main(argv=None):
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse=parse_successor_args)


if __name__ == "__main__":
    main()
