"""The 2021 method (docs/method.md §1-9): its parser, configs, epochs of ordinal pretraining and joint training, evaluation."""
