"""models/agent.py: the 2021 Agent, the successor's RoIAgent, ReluRecurrence and sample_actions."""

import torch

from models import Agent, RoIAgent
from models.agent import ReluRecurrence, sample_actions


def test_recurrent_agent_shapes_keys_and_recurrence():
    torch.manual_seed(0)
    agent = Agent(dim=512, num_act=10, hidden_size=48)
    assert sorted(agent.state_dict().keys()) == sorted(
        ["fc.0.weight", "fc.0.bias", "value_head.weight", "value_head.bias", "i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias"]
    )
    e = torch.randn(6, 512)
    h, logits, actions, values = agent(e)
    assert h.shape == (6, 48) and logits.shape == (6, 10) and actions.shape == (6,) and values.shape == (6,)
    # h_t = relu(i2h(e) + h2h(h_prev)), logits = fc(h), value from h (detached)
    h_prev = torch.randn(6, 48)
    h, logits, _, values = agent(e, h_prev)
    expected_h = torch.relu(agent.i2h(e) + agent.h2h(h_prev))
    assert torch.allclose(h, expected_h)
    assert torch.allclose(logits, agent.fc(expected_h))
    assert torch.allclose(values, agent.value_head(expected_h).squeeze(1))
    values.sum().backward()
    assert agent.i2h.weight.grad is None  # the value head sees h detached


def test_feedforward_agent_and_given_or_greedy_actions():
    agent = Agent(dim=512, num_act=5)
    # the original's modules: a value head on the embedding even without a hidden layer
    assert sorted(agent.state_dict().keys()) == ["fc.0.bias", "fc.0.weight", "value_head.bias", "value_head.weight"]
    assert agent.value_head.in_features == 512
    e = torch.randn(4, 512)
    h, logits, actions, values = agent(e, actions=torch.tensor([0, 1, 2, 3]))
    assert h is None and values.shape == (4,) and actions.tolist() == [0, 1, 2, 3]
    assert torch.allclose(logits, agent.fc(e))
    assert torch.equal(agent(e, greedy=True)[2], logits.argmax(1))


def test_sampling_follows_softmax():
    torch.manual_seed(0)
    agent = Agent(dim=2, num_act=3)
    with torch.no_grad():
        agent.fc[0].weight.zero_()
        agent.fc[0].bias.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
    actions = agent(torch.zeros(20000, 2))[2]
    freq = torch.bincount(actions, minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.2, 0.3, 0.5]), atol=0.015)


def test_sequence_logits_match_step_by_step_with_the_same_gradients():
    """The batched recurrence (hand-written backward) against T calls of `step` under autograd."""
    torch.manual_seed(0)
    agent = Agent(dim=16, num_act=10, hidden_size=7).double()
    embeddings = torch.randn(5, 6, 16, dtype=torch.float64, requires_grad=True)
    h, steps = None, []
    for t in range(6):
        h, logits = agent.step(embeddings[:, t], h)
        steps.append(logits)
    reference = torch.stack(steps, dim=1)
    batched = agent.sequence_logits(embeddings)
    assert torch.allclose(batched, reference, atol=1e-12)
    weights = torch.randn_like(reference)
    params = [embeddings, agent.i2h.weight, agent.i2h.bias, agent.h2h.weight, agent.h2h.bias, agent.fc[0].weight]
    expected = torch.autograd.grad((reference * weights).sum(), params)
    got = torch.autograd.grad((batched * weights).sum(), params)
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-12)


def test_relu_recurrence_gradcheck():
    inputs = (torch.randn(4, 3, 6, dtype=torch.float64, requires_grad=True), torch.randn(6, 6, dtype=torch.float64, requires_grad=True),
              torch.randn(6, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(ReluRecurrence.apply, inputs)


def test_sample_actions_is_seeded_and_nan_safe():
    logits = torch.randn(50, 10)
    first = sample_actions(logits, torch.Generator().manual_seed(1))
    assert torch.equal(first, sample_actions(logits, torch.Generator().manual_seed(1)))
    bad = sample_actions(torch.full((3, 10), float("nan")))  # no exception: the loss check reports NaN
    assert bad.shape == (3,) and ((bad >= 0) & (bad < 10)).all()


def test_roi_agent_sequence_equals_steps():
    torch.manual_seed(0)
    agent = RoIAgent().double()
    assert sum(p.numel() for p in agent.parameters()) == 80_234
    assert {k.rsplit(".", 1)[0] for k in agent.state_dict()} == {"conv.0", "i2h", "h2h", "fc"}
    states = torch.randn(4, 10, 64, 7, 7, dtype=torch.float64)
    h, stepped = None, []
    for t in range(10):
        h, logits = agent.step(states[:, t], h)
        stepped.append(logits)
    assert torch.allclose(agent.sequence_logits(states), torch.stack(stepped, dim=1))
