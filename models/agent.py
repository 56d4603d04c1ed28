"""Recurrent policy agent (SPEC §5)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical


class Agent(nn.Module):
    """Maps a box embedding (and the previous hidden state) to action logits.

    With `hidden_size` H: `h_t = relu(i2h(e_t) + h2h(h_{t-1}))`, `logits = fc(h_t)`,
    `value = value_head(h_t.detach())`. Without it: `logits = fc(e_t)`, no hidden state, no value.
    Key names (`fc.0`, `value_head`, `i2h`, `h2h`) are the original's.
    """

    def __init__(self, dim=512, num_act=10, hidden_size=None):
        super().__init__()
        self.dim = dim
        self.num_act = num_act
        self.hidden_size = hidden_size
        if hidden_size is None:
            self.fc = nn.Sequential(nn.Linear(dim, num_act))
        else:
            self.i2h = nn.Linear(dim, hidden_size)
            self.h2h = nn.Linear(hidden_size, hidden_size)
            self.fc = nn.Sequential(nn.Linear(hidden_size, num_act))
            self.value_head = nn.Linear(hidden_size, 1)

    def init_hidden(self, batch_size, device=None):
        """h_0 = 0: (N, H) zeros, or None without a hidden layer."""
        if self.hidden_size is None:
            return None
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def forward(self, embedding, h_prev=None, actions=None, greedy=False):
        """embedding (N, dim), h_prev (N, H) or None -> (h (N, H) | None, logits (N, A), actions (N,), values (N,) | None).

        Actions are sampled from softmax(logits) (the original, in training and testing), or the
        argmax with `greedy`, unless `actions` are given (tests fix them).
        """
        if self.hidden_size is None:
            h, logits, values = None, self.fc(embedding), None
        else:
            if h_prev is None:
                h_prev = self.init_hidden(embedding.shape[0], embedding.device)
            h = F.relu(self.i2h(embedding) + self.h2h(h_prev))
            logits = self.fc(h)
            values = self.value_head(h.detach()).squeeze(1)
        if actions is None:
            actions = logits.detach().argmax(dim=1) if greedy else Categorical(logits=logits.detach()).sample()
        return h, logits, actions, values
