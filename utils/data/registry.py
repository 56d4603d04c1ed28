"""The successor's datasets by `--dataset` name. A dataset is one module with:

- `IMAGE_SIZE`, `CHANNELS`, `BACKBONE`: the network input side and channels, and the encoder that
  reads them ("mnist": the small RoI encoder with decoder, models/encoder.py; "vgg16": models/vgg.py);
- `FLAGS`: which of the dataset-specific flags it reads (utils/successor/flags.py DATASET_FLAGS; the
  others are refused when given);
- `check_args(args)` -> a one-line message when its flags do not fit, else None;
- `source_splits(args)` -> (train, test) datasets of encoder pretraining and agent training;
- `target_splits(args)` -> (adaptation images, test images) of adaptation (the support is drawn from
  the first);
- `describe(args, train, test, target=False)` -> the line a run prints about its data.
A split is a dataset whose index with a 1-D tensor gives (images (B, C, S, S), targets (B, 4)
`[x1, y1, x2, y2]` input pixels), with `targets` (N, 4), `label` (what it is, for messages),
`fingerprint_parts()`, and for real images `record()` (what `data_lists.json` holds).
A new dataset is one such module plus one line here.
"""

from utils.data import coco, corrupted, cub

DATASETS = {"mnist": corrupted, "cub": cub, "coco": coco}
