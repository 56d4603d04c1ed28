"""utils/successor/flags.py: every flag a stage accepts is read or refused with one line."""

import pytest

from utils.successor.flags import parse_successor_args


@pytest.mark.parametrize("stage, flags", [
    ("agent", ["--lamb", "0.5"]), ("agent", ["--margin", "10"]), ("adaptation", ["--lr", "0.1"]), ("encoder", ["--lamb_ent", "2"]),
    ("encoder", ["--reward", "iou"]), ("agent", ["--support_size", "9"]), ("adaptation", ["--backbone", "vgg16"]),
    ("encoder", ["--sel_cls", "dog"]), ("agent", ["--compile", "1"]),
])
def test_a_flag_the_stage_does_not_read_is_refused(stage, flags, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_successor_args(["--pretrained", "e.pth.tar", "--pretrained_agent", "a.pth.tar"][: 2 if stage == "agent" else 0] + flags,
                             stage=stage)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and flags[0] in err, err


def test_defaults_and_read_flags_parse():
    """Old command lines that repeat a default (--img_size 84, --lr 0.001) still parse."""
    args = parse_successor_args(["--img_size", "84", "--lr", "0.001", "--lamb_ent", "2", "--pretrained", "e.pth.tar"], stage="agent")
    assert args.lamb_ent == 2 and args.agent == "roi" and args.reward == "embed"
