"""The successor method (docs/method.md §10): parser, configs, anchors, groups, epochs, agent set-up, the runs' data."""
