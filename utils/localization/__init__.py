"""What both methods share: boxes and the ordinal box sampler, the actor, the rollout and CorLoc, rewards and REINFORCE, the ordinal loss, the shared flags."""
