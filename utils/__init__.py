"""The project's library, one package per concern; layers point down (tests/test_layout.py walks the imports):

- `errors.py`: UserError, the base of every one-line error;
- `run/`: what every training script runs on (flags, run context, the epoch loop `fit`, checkpoints,
  resume, run folders, logging, signals, speed options); it knows no method and no dataset;
- `data/`: MNIST sources, generation, datasets and loaders;
- `localization/`: what both methods share (boxes, actions, rollout, rewards, ordinal loss, shared flags);
- `method2021/` and `successor/`: each method's parser, configs and epochs; neither imports the other;
- `plots.py`: figures. `actions.py`, `boxes.py`, `rl.py` (and `data`) are the stable public import paths.
"""
