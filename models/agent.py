"""The recurrent policy agents: the 2021 `Agent` (reads box embeddings, docs/method.md §5) and the
successor's `RoIAgent` (reads RoI features, §10.8), both `PolicyAgent`s: the interface that the
rollout (utils/localization/rollout.py) and the policy-gradient loss rely on, written once."""

import torch
import torch.nn as nn
import torch.nn.functional as F

# what an agent reads of each box (`PolicyAgent.reads`); the net provides it
EMBEDDING = "embedding"  # the box's embedding `net.embed(features, rois)` (N, D)
ROI_FEATURE = "roi_feature"  # the pooled RoI feature `net.roi_features(features, rois)` (N, C, p, p); rewards read `net.project` of it


class PolicyAgent(nn.Module):
    """The interface of an agent, as the rollout and the policy-gradient loss use it. A subclass sets
    `reads` (EMBEDDING or ROI_FEATURE) and `num_act`, and implements:

    - `init_hidden(batch_size, device)` -> h_0, (N, H) zeros, or None without recurrence;
    - `rollout_step()` -> a function (state (N, ...), h (N, H) | None) -> (h, logits (N, A)), one step
      without gradients;
    - `sequence_logits(states (N, T, ...))` -> (N, T, A), a whole episode in one batched pass with
      gradients (what REINFORCE differentiates), the same values as T steps from h_0.
    """

    reads: str
    num_act: int

    @classmethod
    def from_args(cls, args, embedding_dim, feature_channels):
        """The agent a run's flags ask for: `args` (num_act, hidden_size, pooling_size, ...), the net's
        embedding size D and RoI feature channels C. Subclasses build from what they read."""
        raise NotImplementedError

    def init_args(self):
        """The constructor's keyword arguments, as plain values (checkpoints record them with the
        class's registry name, so `build_agent(name, **init_args)` rebuilds the agent)."""
        raise NotImplementedError

    def init_hidden(self, batch_size, device=None):
        raise NotImplementedError

    def rollout_step(self):
        raise NotImplementedError

    def sequence_logits(self, states):
        raise NotImplementedError


class Agent(PolicyAgent):
    """Maps a box embedding (and the previous hidden state) to action logits.

    With `hidden_size` H: `h_t = relu(i2h(e_t) + h2h(h_{t-1}))`, `logits = fc(h_t)`,
    `value = value_head(h_t.detach())`. Without it: `logits = fc(e_t)`, no hidden state, and
    `value = value_head(e_t.detach())`. Modules and key names (`fc.0`, `value_head`, `i2h`, `h2h`)
    are the original's, so its checkpoints load strictly; the value is never part of the loss.
    """

    reads = EMBEDDING

    def __init__(self, dim=512, num_act=10, hidden_size=None):
        super().__init__()
        self.dim = dim
        self.num_act = num_act
        self.hidden_size = hidden_size
        if hidden_size is None:
            self.fc = nn.Sequential(nn.Linear(dim, num_act))
            self.value_head = nn.Linear(dim, 1)
        else:
            self.i2h = nn.Linear(dim, hidden_size)
            self.h2h = nn.Linear(hidden_size, hidden_size)
            self.fc = nn.Sequential(nn.Linear(hidden_size, num_act))
            self.value_head = nn.Linear(hidden_size, 1)

    @classmethod
    def from_args(cls, args, embedding_dim, feature_channels):
        return cls(embedding_dim, args.num_act, args.hidden_size)

    def init_args(self):
        return {"dim": self.dim, "num_act": self.num_act, "hidden_size": self.hidden_size}

    def init_hidden(self, batch_size, device=None):
        """h_0 = 0: (N, H) zeros, or None without a hidden layer."""
        if self.hidden_size is None:
            return None
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=self.h2h.weight.dtype)

    def step(self, embedding, h_prev=None):
        """The policy alone (what a rollout needs): -> (h (N, H) | None, logits (N, A))."""
        if self.hidden_size is None:
            return None, self.fc(embedding)
        if h_prev is None:
            h_prev = self.init_hidden(embedding.shape[0], embedding.device)
        h = F.relu(self.i2h(embedding) + self.h2h(h_prev))
        return h, self.fc(h)

    def rollout_step(self):
        """`step` for a rollout without gradients, as a function (e, h) -> (h, logits): i2h and h2h
        in one product with stacked weights (four ops a step instead of five; the same values up to
        float rounding)."""
        if self.hidden_size is None:
            return self.step
        weight_t = torch.cat([self.i2h.weight, self.h2h.weight], dim=1).t()  # (dim + H, H)
        bias = self.i2h.bias + self.h2h.bias

        def step(embedding, h_prev):
            if h_prev.dtype != embedding.dtype:  # the float32 h_0 under bf16 autocast
                h_prev = h_prev.to(embedding.dtype)
            h = torch.relu(torch.addmm(bias, torch.cat([embedding, h_prev], dim=1), weight_t))
            return h, self.fc(h)

        return step

    def sequence_logits(self, embeddings):
        """The logits of a whole episode at once: embeddings (N, T, dim) of the boxes the agent saw
        (h_0 = 0) -> (N, T, A); the same values as T calls of `step`, with the input and output
        layers batched over the steps (what the policy-gradient loss differentiates)."""
        if self.hidden_size is None:
            return self.fc(embeddings)
        inputs = self.i2h(embeddings.transpose(0, 1))  # (T, N, H)
        if inputs.dtype != self.h2h.weight.dtype:  # bf16 under autocast: the recurrence runs in the weights' dtype
            inputs = inputs.to(self.h2h.weight.dtype)
        hidden = ReluRecurrence.apply(inputs, self.h2h.weight, self.h2h.bias)
        return self.fc(hidden.transpose(0, 1))

    def forward(self, embedding, h_prev=None, actions=None, greedy=False, generator=None):
        """embedding (N, dim), h_prev (N, H) or None -> (h (N, H) | None, logits (N, A), actions (N,), values (N,)).

        Actions are sampled from softmax(logits) (the original, in training and testing), or the
        argmax with `greedy`, unless `actions` are given (tests fix them).
        """
        h, logits = self.step(embedding, h_prev)
        values = self.value_head((embedding if h is None else h).detach()).squeeze(1)
        if actions is None:
            actions = logits.detach().argmax(dim=1) if greedy else sample_actions(logits.detach(), generator)
        return h, logits, actions, values


class ReluRecurrence(torch.autograd.Function):
    """h_t = relu(x_t + h2h(h_{t-1})), h_0 = 0, over a whole sequence: x (T, N, H) -> h (T, N, H).

    The agent's recurrence with a hand-written backward: the hidden-state gradient runs back
    through the steps (three ops a step) and the h2h weight and bias gradients are one batched
    product and sum, where autograd would record and accumulate them step by step (~18 ops a step).
    Runs in the inputs' dtype with autocast off (the recurrence is tiny).
    """

    @staticmethod
    def forward(ctx, inputs, weight, bias):
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            weight_t = weight.to(inputs.dtype).t()
            h = inputs.new_zeros(inputs.shape[1:])
            hidden = []
            for x in (inputs + bias.to(inputs.dtype)).unbind(0):  # i2h(e_t) + the h2h bias, then + h2h's product
                h = torch.relu(torch.addmm(x, h, weight_t))
                hidden.append(h)
            hidden = torch.stack(hidden)
        ctx.save_for_backward(hidden, weight)
        return hidden

    @staticmethod
    def backward(ctx, grad_hidden):
        hidden, weight = ctx.saved_tensors
        weight = weight.to(grad_hidden.dtype)
        active = (hidden > 0).to(grad_hidden.dtype).unbind(0)  # relu's derivative
        grads = grad_hidden.unbind(0)
        carry = torch.zeros_like(grads[0])
        grad_pre = []
        for t in range(len(grads) - 1, -1, -1):
            g = (grads[t] + carry) * active[t]
            grad_pre.append(g)
            carry = g @ weight  # gradient reaching h_{t-1}
        grad_pre = torch.stack(grad_pre[::-1])  # (T, N, H): gradient of each step's pre-activation
        previous = torch.cat([torch.zeros_like(hidden[:1]), hidden[:-1]])  # h_{t-1}
        grad_weight = grad_pre.flatten(0, 1).t() @ previous.flatten(0, 1)
        return grad_pre, grad_weight, grad_pre.sum(dim=(0, 1))


def gumbel_noise(shape, device, generator=None):
    """Standard Gumbel draws -log(E), E ~ Exponential(1), float32."""
    return torch.empty(shape, device=device).exponential_(generator=generator).log_().neg_()


def sample_actions(logits, generator=None, noise=None):
    """Samples one action per row from softmax(logits) -> (N,) int64, with no host sync.

    argmax(logits + G) with G standard Gumbel noise is a draw from softmax(logits) (the Gumbel-max
    trick), so this has the distribution of `Categorical(logits=logits).sample()`; unlike
    `torch.multinomial` it neither syncs nor fails on NaN logits (the training loop reports those as
    a non-finite loss). `noise` (N, A) may be drawn in advance with `gumbel_noise`.
    """
    if noise is None:
        noise = gumbel_noise(logits.shape, logits.device, generator)
    return (logits + noise).argmax(dim=-1)


class RoIAgent(PolicyAgent):
    """The successor's recurrent agent: it reads the pooled RoI feature (N, C, p, p) of its window.

    `x = flatten(relu(conv(feature)))` (a 1x1 convolution C -> 32), `h_t = relu(i2h(x_t) + h2h(h_{t-1}))`
    with h_0 = 0, `logits = fc(h_t)`. No value head, torch's default initialisation; the key names
    (`conv.0`, `i2h`, `h2h`, `fc`) are the successor's, so its checkpoints load strictly.
    """

    reads = ROI_FEATURE

    def __init__(self, in_channels=64, pooling_size=7, num_act=10, hidden_size=48):
        super().__init__()
        self.in_channels, self.pooling_size, self.num_act, self.hidden_size = in_channels, pooling_size, num_act, hidden_size
        self.conv = nn.Sequential(nn.Conv2d(in_channels, 32, kernel_size=1), nn.ReLU(inplace=True))
        self.i2h = nn.Linear(32 * pooling_size * pooling_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.fc = nn.Linear(hidden_size, num_act)

    @classmethod
    def from_args(cls, args, embedding_dim, feature_channels):
        return cls(feature_channels, args.pooling_size, args.num_act, args.hidden_size)

    def init_args(self):
        return {"in_channels": self.in_channels, "pooling_size": self.pooling_size, "num_act": self.num_act,
                "hidden_size": self.hidden_size}

    def init_hidden(self, batch_size, device=None):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=self.h2h.weight.dtype)

    def encode(self, roi_features):
        """(..., C, p, p) -> (..., 32 * p * p) input of the recurrence."""
        lead = roi_features.shape[:-3]
        return self.conv(roi_features.reshape(-1, *roi_features.shape[-3:])).reshape(*lead, -1)

    def step(self, roi_feature, h_prev=None):
        """(N, C, p, p), h (N, H) or None -> (h (N, H), logits (N, A))."""
        if h_prev is None:
            h_prev = self.init_hidden(roi_feature.shape[0], roi_feature.device)
        h = F.relu(self.i2h(self.encode(roi_feature)) + self.h2h(h_prev.to(roi_feature.dtype)))
        return h, self.fc(h)

    def rollout_step(self):
        """`step` as a function (state, h) -> (h, logits), as `PolicyAgent` asks."""
        return self.step

    def sequence_logits(self, roi_features):
        """The logits of a whole episode at once: (N, T, C, p, p) -> (N, T, A), the same values as T
        calls of `step` (h_0 = 0), with the convolution and the input layer batched over the steps."""
        inputs = self.i2h(self.encode(roi_features).transpose(0, 1))  # (T, N, H)
        if inputs.dtype != self.h2h.weight.dtype:  # bf16 under autocast: the recurrence runs in the weights' dtype
            inputs = inputs.to(self.h2h.weight.dtype)
        hidden = ReluRecurrence.apply(inputs, self.h2h.weight, self.h2h.bias)
        return self.fc(hidden.transpose(0, 1))

    def forward(self, roi_feature, h_prev=None):
        return self.step(roi_feature, h_prev)


# --agent: registry name -> PolicyAgent class. A new agent is one PolicyAgent subclass plus one line here
# (or `AGENTS["name"] = Class` before the script parses its flags).
AGENTS = {"embedding": Agent, "roi": RoIAgent}


def build_agent(name, **init_args):
    """The registered agent `name` built with `init_args` (a checkpoint's record)."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; registered: {', '.join(AGENTS)}")
    return AGENTS[name](**init_args)


def agent_record(agent):
    """What a checkpoint records of `agent`: {"agent_class": registry name, "agent_args": init_args}."""
    names = [name for name, cls in AGENTS.items() if type(agent) is cls]
    if not names:
        raise ValueError(f"{type(agent).__name__} is not in the agent registry (models/agent.py AGENTS)")
    return {"agent_class": names[0], "agent_args": agent.init_args()}


def record_mismatch(state, agent):
    """How the agent a checkpoint dict `state` records (agent_class, agent_args) differs from `agent`,
    as one phrase, or None when it is that agent or records none (a checkpoint from before agents
    were recorded: loading its weights strictly still checks their shapes)."""
    if "agent_class" not in state:
        return None
    recorded, built = {"agent_class": state["agent_class"], "agent_args": dict(state["agent_args"])}, agent_record(agent)
    if recorded == built:
        return None
    describe = lambda r: f"{r['agent_class']}({', '.join(f'{k}={v}' for k, v in sorted(r['agent_args'].items()))})"
    return f"it holds the agent {describe(recorded)}, the flags build {describe(built)}"
