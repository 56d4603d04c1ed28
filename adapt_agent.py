"""Successor method, stage 3: test-time policy adaptation. A trained agent adapts to a new
background kind or digit from unlabelled target images; its reward is the embedding distance to
the prototype of a few labelled exemplars (docs/method.md §10.10)."""

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while torch loads gives one line
    from utils.run.signals import quiet_ctrl_c

    quiet_ctrl_c()

import copy
import os

import numpy as np
import torch

from utils.errors import CheckpointError
from utils.localization.evaluation import baseline_corloc, too_small_share
from utils.localization.rollout import rollout
from utils.plots import draw_run_curves, trajectory_figure, trajectory_gif
from utils.run.checkpoints import load_checkpoint, load_weights, resolve_checkpoint, save_checkpoint
from utils.run.context import RunContext
from utils.run.entry import script_main
from utils.run.files import file_sha256
from utils.run.folder import check_inputs, record_variant
from utils.run.logging import EpochLine, format_metrics, warn
from utils.run.loop import LAST_AT_END, CheckpointPolicy, fit, make_optimizer, report_summary
from utils.successor.agents import agent_checkpoint, evaluation_pass, load_agent, load_encoder
from utils.successor.config import AgentConfig
from utils.successor.data import build_adaptation_loaders, build_frozen_encoder, record_lists, record_subset, support_indices
from utils.successor.epochs import agent_epoch
from utils.successor.flags import FREE_FLAGS, parse_successor_args

DEFAULT_SAVENAME = "adapt_mnist"
# the figures of the line printed per epoch (every figure with --log_all 1)
EPOCH_LINE = EpochLine("CorLoc", train="Train Loc Acc", test="Test Loc Acc", loss="Train Pol Loss")
SELECTION = "Test Loc Acc"  # best-on-test: an oracle figure (it reads target labels), reported as such
LABEL_FREE = "label_free"  # the checkpoint of the epoch with the highest mean training reward


def source_models(args, device, run_dir, resuming):
    """The trained agent and the encoder it was trained with (recorded in its checkpoint), unless
    --pretrained names another one."""
    agent_path = resolve_checkpoint(args.pretrained_agent, args.saveroot, "--pretrained_agent")
    if agent_path is None:
        raise CheckpointError("adapt_agent.py needs --pretrained_agent, an agent checkpoint of train_agent.py "
                              "(e.g. results/agent_mnist_ae/best.pth.tar)")
    state = load_checkpoint(agent_path)
    recorded = state.get("encoder")
    if args.pretrained:
        encoder_path = resolve_checkpoint(args.pretrained, args.saveroot, "--pretrained")
        if recorded and os.path.abspath(encoder_path) != recorded:
            print(f"--pretrained overrides the encoder the agent was trained with ({recorded})")
    elif recorded and os.path.isfile(recorded):
        encoder_path = recorded
    else:
        raise CheckpointError(f"{agent_path} does not name an existing encoder ({recorded or 'none recorded'}); "
                              f"give the one it was trained with as --pretrained")
    if state.get("encoder_sha256") and file_sha256(encoder_path) != state["encoder_sha256"]:
        warn(f"{encoder_path} is not the file the agent was trained with (sha256 differs)")
    encoder = load_encoder(encoder_path, args, device, run_dir)
    agent = load_agent(agent_path, args, device)
    if not args.evaluate:  # a resumed adaptation continues from the agent and encoder it started from
        check_inputs(run_dir, {"--pretrained_agent": agent_path, "--pretrained": encoder_path}, resuming=resuming)
    source = f"{state.get('bg_name')} digit {state.get('digit')}" if args.dataset == "mnist" else args.dataset
    print(f"agent: {agent_path} (epoch {state.get('epoch')}, source {source}, test Loc Acc {state.get('acc')})")
    return encoder, agent, encoder_path


def support_prototype(ctx, encoder):
    """The mean embedding of the ground-truth boxes of `--support_size` seeded target training images."""
    train_set = ctx.loaders["train"].dataset.dataset
    record_subset(ctx.run_dir, "sample_inds", train_set)  # with --sample_size N only
    indices = support_indices(len(train_set), ctx.args.support_size, ctx.args.seed)
    record_subset(ctx.run_dir, "support_inds", train_set, indices)
    record_lists(ctx.run_dir, ctx.loaders, support=indices)  # real images: every split's ids and the support's
    images, targets = train_set[indices]
    with torch.no_grad():
        embeddings = encoder.embed(encoder.features(images.to(ctx.device)), targets.to(ctx.device)).float()
    return embeddings.mean(dim=0)


def before(ctx, frozen, agent, config, prototype):
    """The source agent on the target domain, before any update, and the baselines on the test split:
    the whole-image box and a uniform random policy."""
    test = evaluation_pass(ctx, frozen, agent, config, ctx.loaders["test"], -1, prototype=prototype)
    metrics = {"Test Before Loc Acc": test["Test Loc Acc"],
               "Train Before Loc Acc": evaluation_pass(ctx, frozen, agent, config, ctx.loaders["train_eval"], -1, phase="Train",
                                                       prototype=prototype)["Train Loc Acc"]}
    if "Test Loc Acc Greedy" in test:  # --greedy 1
        metrics["Test Before Loc Acc Greedy"] = test["Test Loc Acc Greedy"]
    metrics.update(baseline_corloc([targets for _, targets in ctx.loaders["test"]], config.rollout, ctx.generators["eval"], ctx.device))
    if ctx.args.dataset != "mnist":  # small objects cap CorLoc on real images
        metrics["Test Share Too Small"] = too_small_share(ctx.loaders["test"].dataset.targets, config.rollout.min_box_side)
    print(f"before adaptation: {format_metrics(metrics)} ({len(ctx.loaders['test'].dataset)} test images)")
    return metrics


def adapt(ctx, frozen, agent, config, prototype, encoder_path):
    args, run_dir, loaders, device = ctx.args, ctx.run_dir, ctx.loaders, ctx.device
    optimizer = make_optimizer(args.optimizer_ag, agent.parameters(), args.lr_ag)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.steps_ag, gamma=0.1)

    def run_epoch(epoch, final):
        metrics, _ = agent_epoch(frozen, agent, loaders["train"], device, ctx.generators["sampler"], config, epoch, optimizer,
                                 prototype=prototype)
        metrics.update(evaluation_pass(ctx, frozen, agent, config, loaders["test"], epoch, prototype=prototype))
        return metrics

    def save(kind, **extra):
        return lambda epoch, metrics: save_checkpoint(agent_checkpoint(epoch, agent, metrics[SELECTION], args, encoder_path, **extra),
                                                      os.path.join(run_dir, f"{kind}.pth.tar"))

    reward_path = os.path.join(run_dir, f"{LABEL_FREE}.pth.tar")
    best_reward = {"value": load_checkpoint(reward_path)["train_rewards"] if ctx.resume is not None and os.path.isfile(reward_path)
                   else float("-inf")}

    def keep_label_free(epoch, metrics):
        """A label-free choice: the epoch with the highest mean training reward (no target box read)."""
        if metrics["Train Rewards"] > best_reward["value"]:
            best_reward["value"] = metrics["Train Rewards"]
            save(LABEL_FREE, train_rewards=float(metrics["Train Rewards"]))(epoch, metrics)

    policy = CheckpointPolicy(selection=SELECTION, last=LAST_AT_END, patience=args.patience)
    return fit(ctx, run_epoch, policy, {"agent": agent}, {"agent": optimizer}, {"agent": scheduler}, save_best=save("best"),
               save_last=save("last"), line=EPOCH_LINE, after_epoch=keep_label_free).last_epoch


def after(ctx, frozen, agent, config, prototype):
    """The adapted agents on the target test and train splits: `last` (the main figure), `best`
    (chosen on test: an oracle figure) and `label-free` (the highest mean training reward)."""
    summary = {}
    for kind in ("last", "best", LABEL_FREE):
        path = os.path.join(ctx.run_dir, f"{kind}.pth.tar")
        state = load_weights(agent, path, "agent")
        kind = kind.replace("_", " ")  # each stored acc is its epoch's sampled test pass
        summary[f"Test {kind.title()} Loc Acc"] = float(state["acc"])
        summary[f"Train {kind.title()} Loc Acc"] = evaluation_pass(ctx, frozen, agent, config, ctx.loaders["train_eval"], state["epoch"],
                                                                  phase="Train", prototype=prototype)["Train Loc Acc"]
        summary[f"{kind.title()} Epoch"] = int(state["epoch"])
    return summary


def visualize(ctx, encoder, agents, config):
    """Trajectories of the first --visualize target test images before and after adaptation (the
    `last` agent), side by side: a PNG (before and after rows per image) and a GIF of T + 1 frames.
    Both rollouts draw the same freshly seeded noise, so no figure of the run moves."""
    test_set = ctx.loaders["test"].dataset.dataset
    count = min(ctx.args.visualize, len(test_set))
    images, targets = test_set[list(range(count))]
    with torch.no_grad(), config.rollout.precision.autocast(ctx.device):
        features = encoder.features(images.to(ctx.device))
    episodes = [rollout(encoder, agent.eval(), features, config.rollout, "sample", ctx.fresh_generator("summary")) for agent in agents]
    pictures = test_set.images[:count].numpy()
    boxes, actions = (torch.cat([getattr(e, name).cpu() for e in episodes]) for name in ("boxes", "actions"))
    title = f"{ctx.args.bg_name} digit {ctx.args.digit}"
    both = (np.concatenate([pictures, pictures]), boxes, actions, torch.cat([targets, targets]))  # before rows, then after rows
    interleaved = [row for image in range(count) for row in (image, count + image)]  # each image's before row above its after row
    path = trajectory_figure(*[x[interleaved] for x in both], os.path.join(ctx.run_dir, "trajectories.png"),
                             f"{title}: each image before (upper row) and after adaptation (lower row)")
    animation = trajectory_gif(*both, os.path.join(ctx.run_dir, "trajectories.gif"), f"{title}, before (top) / after (bottom)",
                               columns=count, row_labels=["before", "after"])
    print(f"trajectories of {count} target test images, before and after adaptation -> {path}, {animation}")
    return path


def run(args, run_dir):
    ctx = RunContext(args, run_dir, "adapt_agent", build_adaptation_loaders, selection=(SELECTION,), free_flags=FREE_FLAGS)
    encoder, agent, encoder_path = source_models(args, ctx.device, run_dir, resuming=ctx.resume is not None)
    config = AgentConfig.from_args(args)
    record_variant(run_dir, "target_norm", args.target_norm)
    frozen = build_frozen_encoder(ctx, encoder, config.rollout.precision, ("train", "test", "train_eval"))
    try:
        prototype = support_prototype(ctx, encoder)
        summary = before(ctx, frozen, agent, config, prototype)
        source = copy.deepcopy(agent) if args.visualize else None  # the agent before adaptation (no random draw)
        last_epoch = None
        if not args.evaluate:
            last_epoch = adapt(ctx, frozen, agent, config, prototype, encoder_path)
        elif os.path.isfile(os.path.join(run_dir, "last.pth.tar")):
            last_epoch = load_checkpoint(os.path.join(run_dir, "last.pth.tar"))["epoch"]
        if last_epoch is not None:
            summary.update(after(ctx, frozen, agent, config, prototype))
        summary["Test Images"], summary["Train Images"] = len(ctx.loaders["test"].dataset), len(ctx.loaders["train"].dataset)
        summary = report_summary(ctx, summary, (last_epoch if last_epoch is not None else -1) + 1,
                                 "adaptation summary (Last = after the last epoch; Best = chosen on target test labels, an oracle)")
        draw_run_curves(ctx.run_dir)
        if args.visualize and last_epoch is not None:
            load_weights(agent, os.path.join(run_dir, "last.pth.tar"), "agent")
            visualize(ctx, encoder, (source, agent), config)
        frozen.report()
        return summary
    finally:
        ctx.logger.finish()


def main(argv=None):
    needs = {"pretrained_agent": "the agent checkpoint of train_agent.py (e.g. agent_mnist_ae/best.pth.tar)"}
    parse = lambda argv, description: parse_successor_args(argv, description, grouped=False, needs=needs,  # adaptation: no groups
                                                           visualizes=True, stage="adaptation")
    return script_main(argv, __doc__, DEFAULT_SAVENAME, run, os.path.basename(__file__), parse=parse)


if __name__ == "__main__":
    main()
