"""What the successor's agent scripts (train_agent.py, adapt_agent.py) share: loading the frozen
encoder, building the agent, its checkpoint and an evaluation pass."""

import os

import torch

from models import RoIAgent, RoIEncoder
from utils.run.checkpoints import load_weights, model_checkpoint
from utils.run.files import file_sha256
from utils.successor.epochs import agent_epoch


def load_encoder(path, args, device):
    """The frozen encoder in eval mode (`--freeze`: the encoder never trains here)."""
    encoder = RoIEncoder(args.pooling_size, args.pooling_mode, args.dim)
    state = load_weights(encoder, path, "encoder")
    print(f"encoder: {path} (epoch {state.get('epoch')}, test Ord Acc Proto {state.get('acc_proto', state.get('acc'))})")
    return encoder.requires_grad_(False).eval().to(device)


def build_agent(args, device):
    return RoIAgent(args.dim_ag, args.pooling_size, args.num_act, args.hidden_size).to(device)


def agent_checkpoint(epoch, agent, acc, args, encoder_path, **extra):
    """`{epoch, state_dict, acc}` (the agent only) plus the encoder it was trained with (path and
    sha256, so adaptation uses the same one by default) and what rebuilds the agent."""
    return model_checkpoint(epoch, agent, acc, encoder=os.path.abspath(encoder_path), encoder_sha256=file_sha256(encoder_path),
                            num_act=agent.num_act, hidden_size=agent.hidden_size, pooling_size=agent.pooling_size,
                            samples_per_class=args.samples_per_class, bg_name=args.bg_name, digit=args.digit, **extra)


def evaluation_pass(ctx, encoder, agent, config, loader, epoch, phase="Test", prototype=None, generator=None):
    """Sampled actions (the original's testing); `{phase} Loc Acc Greedy` with --greedy 1. Draws come
    from `generator` (default: the run's evaluation stream); the greedy pass draws (group pairings for
    its rewards only) from its own freshly seeded stream, so --greedy 1 changes no other figure."""
    generator = generator if generator is not None else ctx.generators["eval"]
    with torch.no_grad():
        metrics, _ = agent_epoch(encoder, agent, loader, ctx.device, generator, config, epoch, phase=phase, prototype=prototype)
        if ctx.args.greedy:
            greedy, _ = agent_epoch(encoder, agent, loader, ctx.device, ctx.fresh_generator("greedy"), config, epoch, phase="Greedy",
                                    prototype=prototype, policy="greedy")
            metrics[f"{phase} Loc Acc Greedy"] = greedy["Greedy Loc Acc"]
    return metrics
