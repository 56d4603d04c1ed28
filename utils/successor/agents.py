"""What the successor's agent scripts (train_agent.py, adapt_agent.py) share: loading the frozen
encoder, building the agent (`--agent`), its checkpoint and an evaluation pass."""

import os

from models import RoIEncoder, VGGRoIEncoder
from models.agent import AGENTS, agent_record, record_mismatch
from utils.data.registry import DATASETS
from utils.errors import CheckpointError
from utils.localization.evaluation import evaluate_split
from utils.run.checkpoints import load_checkpoint, load_weights, model_checkpoint
from utils.run.files import file_sha256
from utils.run.folder import record_variant
from utils.successor.epochs import agent_epoch


def new_encoder(args):
    """The encoder `--dataset` reads its images with (utils/data/registry.py BACKBONE), freshly
    initialised: the small RoI encoder with decoder (MNIST) or the VGG16 one (real images, its base
    still to be filled: utils/successor/backbone.py load_backbone_weights)."""
    if DATASETS[args.dataset].BACKBONE == "vgg16":
        return VGGRoIEncoder(args.pooling_size, args.pooling_mode, args.dim)
    return RoIEncoder(args.pooling_size, args.pooling_mode, args.dim)


def load_encoder(path, args, device, run_dir=None):
    """The frozen encoder in eval mode (`--freeze`: the encoder never trains here). A real-image encoder's
    record of its VGG16 weights is printed and, with `run_dir`, labels the run (run.json "variants")."""
    encoder = new_encoder(args)
    state = load_weights(encoder, path, "encoder")
    print(f"encoder: {path} (epoch {state.get('epoch')}, test Ord Acc Proto {state.get('acc_proto', state.get('acc'))})")
    backbone = state.get("backbone")
    if backbone:
        print(f"encoder backbone: VGG16 {backbone.get('warning') or backbone.get('variant') or backbone.get('path')}")
        if run_dir:
            record_variant(run_dir, "backbone_weights", backbone)
    return encoder.requires_grad_(False).eval().to(device)


def build_agent(args, device):
    """The agent `--agent` names, from the run's flags (embedding size --dim, RoI channels --dim_ag)."""
    return AGENTS[args.agent].from_args(args, args.dim, args.dim_ag).to(device)


def load_agent(path, args, device):
    """The agent of a checkpoint: the one the flags build (--agent, --num_act, --hidden_size,
    --pooling_size, --dim_ag), which must be the agent the checkpoint records (the rollout and the
    actor read the same flags), with its weights."""
    agent = build_agent(args, device)
    mismatch = record_mismatch(load_checkpoint(path), agent)
    if mismatch:
        raise CheckpointError(f"{path}: {mismatch}; pass the flags it was trained with")
    load_weights(agent, path, "agent")
    return agent


def agent_checkpoint(epoch, agent, acc, args, encoder_path, **extra):
    """`{epoch, state_dict, acc}` (the agent only) plus the encoder it was trained with (path and
    sha256, so adaptation uses the same one by default) and what rebuilds the agent (its registry name
    and constructor arguments)."""
    return model_checkpoint(epoch, agent, acc, encoder=os.path.abspath(encoder_path), encoder_sha256=file_sha256(encoder_path),
                            samples_per_class=args.samples_per_class, bg_name=args.bg_name, digit=args.digit,
                            **agent_record(agent), **extra)


def evaluation_pass(ctx, frozen, agent, config, loader, epoch, phase="Test", prototype=None):
    """`evaluate_split` of the successor: sampled actions (the original's testing) from the run's
    evaluation stream; `{phase} Loc Acc Greedy` with --greedy 1 (its draws, group pairings for its
    rewards only, from a freshly seeded stream, so --greedy 1 changes no other figure; with a box
    memo at most in the last bits, since its episodes fill the memo too)."""
    run_pass = lambda policy, generator, name: agent_epoch(frozen, agent, loader, ctx.device, generator, config, epoch, phase=name,
                                                           prototype=prototype, policy=policy)
    greedy = ctx.fresh_generator("greedy") if ctx.args.greedy else None
    return evaluate_split(run_pass, phase, ctx.generators["eval"], greedy)[0]
