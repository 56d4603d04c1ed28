"""Plug-in rewards and agents: a new reward is one function plus one registry line, a new agent one
PolicyAgent class plus one line; both train for a tiny epoch in each method, and checkpoints record
the agent so that loading rebuilds it through the interface."""

import os

import pytest
import torch
import torch.nn as nn
from conftest import load_script, read_metrics, write_corrupted_split

from models.agent import AGENTS, EMBEDDING, PolicyAgent, agent_record, build_agent, record_mismatch
from utils.localization.rewards import REWARDS


def toy_reward(anchors, episode, targets, config):
    """Rewards each step by how much the box shrank (needs no anchor)."""
    areas = (episode.boxes[..., 2] - episode.boxes[..., 0] + 1) * (episode.boxes[..., 3] - episode.boxes[..., 1] + 1)
    return (areas[:, :-1] - areas[:, 1:]) / areas[:, :1]


class ToyAgent(PolicyAgent):
    """A feed-forward agent on the box embedding: logits = fc(e_t), no hidden state."""

    reads = EMBEDDING

    def __init__(self, dim=512, num_act=10):
        super().__init__()
        self.dim, self.num_act = dim, num_act
        self.fc = nn.Linear(dim, num_act)

    @classmethod
    def from_args(cls, args, embedding_dim, feature_channels):
        return cls(embedding_dim, args.num_act)

    def init_args(self):
        return {"dim": self.dim, "num_act": self.num_act}

    def init_hidden(self, batch_size, device=None):
        return None

    def rollout_step(self):
        return lambda state, hidden: (None, self.fc(state))

    def sequence_logits(self, states):
        return self.fc(states)


@pytest.fixture
def plugins(monkeypatch):
    monkeypatch.setitem(REWARDS, "toy", toy_reward)  # the one registry line of each
    monkeypatch.setitem(AGENTS, "toy", ToyAgent)


@pytest.mark.slow
def test_a_toy_reward_and_agent_train_in_the_2021_method(plugins, synthetic_data, tmp_path):
    base = ["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
            "--batch_size", "32", "--pooling_size", "3", "--seq_len", "3", "--num_act", "10", "--reward", "toy", "--agent", "toy"]
    load_script("train-joint.py").main([*base, "--savename", "joint"])
    state = torch.load(os.path.join(tmp_path, "joint", "best_agent.pth.tar"), weights_only=True)
    assert state["agent_class"] == "toy" and state["agent_args"] == {"dim": 512, "num_act": 10}
    assert set(state["state_dict"]) == {"fc.weight", "fc.bias"}
    assert read_metrics(str(tmp_path / "joint"))[0]["Train Rewards"] != 0


@pytest.mark.slow
def test_a_toy_reward_and_agent_train_in_the_successor(plugins, tmp_path, capsys):
    datapath = str(tmp_path / "data")
    write_corrupted_split(datapath, "patch", 3, "train", 20, seed=1)
    write_corrupted_split(datapath, "patch", 3, "test", 10, seed=2)
    base = ["--datapath", datapath, "--saveroot", str(tmp_path), "--device", "cpu", "--wandb_mode", "disabled", "--epochs", "1",
            "--batch_size", "10", "--bg_name", "patch", "--digit", "3", "--pooling_size", "3", "--dim", "16"]
    load_script("pretrain_encoder_ordinal.py").main([*base, "--savename", "pre", "--samples_per_class", "5"])
    load_script("train_agent.py").main([*base, "--savename", "agent", "--pretrained", "pre/best.pth.tar", "--num_act", "10",
                                        "--seq_len", "3", "--reward", "toy", "--agent", "toy"])
    state = torch.load(os.path.join(tmp_path, "agent", "best.pth.tar"), weights_only=True)
    assert state["agent_class"] == "toy" and state["agent_args"] == {"dim": 16, "num_act": 10}
    assert read_metrics(str(tmp_path / "agent"))[0]["Train Rewards"] != 0
    with pytest.raises(SystemExit) as stop:  # adapting it with the default --agent roi: one line naming both agents
        load_script("adapt_agent.py").main([*base, "--savename", "adapt", "--pretrained_agent", "agent/best.pth.tar"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "holds the agent toy(dim=16, num_act=10), the flags build roi(" in err and "Traceback" not in err


def test_a_checkpoint_records_its_agent_and_refuses_another(plugins):
    """The record rebuilds the agent through the registry; an agent the flags build otherwise is named."""
    toy = ToyAgent(dim=8, num_act=4)
    state = {"state_dict": toy.state_dict(), **agent_record(toy)}
    rebuilt = build_agent(state["agent_class"], **state["agent_args"])
    assert type(rebuilt) is ToyAgent and rebuilt.init_args() == toy.init_args()
    assert record_mismatch(state, rebuilt) is None and record_mismatch({"state_dict": {}}, toy) is None  # older checkpoints
    assert record_mismatch(state, ToyAgent(dim=8, num_act=5)) == ("it holds the agent toy(dim=8, num_act=4), the flags build "
                                                                   "toy(dim=8, num_act=5)")


def test_the_2021_method_refuses_an_agent_that_reads_roi_features(synthetic_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        load_script("train-joint.py").main(["--datapath", synthetic_data, "--saveroot", str(tmp_path), "--agent", "roi"])
    assert stop.value.code == 2 and "reads RoI features" in capsys.readouterr().err
