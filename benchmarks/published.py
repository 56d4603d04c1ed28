"""The published flags of pretrain.sh and joint.sh, for the benchmarks (this module imports nothing, so
a benchmark timing another checkout can read it without importing this checkout's code)."""

PUBLISHED = {
    "pretrain": ("ordinal-pretrain-cluttermnist-scale.py",
                 ["--batch_size", "512", "--lr", "0.0019125313967198946", "--margin", "60", "--pooling_mode", "align",
                  "--pooling_size", "5", "--optimizer", "SGD", "--step", "25"]),
    "joint": ("train-joint.py",
              ["--lr_ag", "0.001", "--lr", "0.001", "--pooling_mode", "align", "--pooling_size", "5", "--lamb_ent", "5.",
               "--seq_len", "10", "--margin", "60", "--sign", "0", "--hidden_size", "48", "--freeze", "0", "--norm", "0",
               "--num_act", "10", "--optimizer_ag", "Adam", "--optimizer", "SGD", "--batch_size", "512", "--step_ag", "80",
               "--steps", "30", "70", "110"]),
}
