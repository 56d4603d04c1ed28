"""utils/data/datasets.py: ClutteredMNIST (values, labels, dtypes, indexing) and load_arrays, with the
errors for missing, malformed or empty data files."""

import os

import numpy as np
import pytest
import torch
from conftest import write_synthetic_split

from utils.data.clutter import data_files
from utils.data.corrupted import CorruptedMNIST
from utils.data.datasets import ClutteredMNIST, load_arrays
from utils.errors import DataError


def test_item_values_for_a_known_image(tmp_path):
    datapath = str(tmp_path)
    images, labels = write_synthetic_split(datapath, 3, "test", 5, seed=0)
    dataset = ClutteredMNIST(datapath, 3, "test")
    image, target = dataset[2]
    assert image.shape == (1, 84, 84) and image.dtype == torch.float32
    # worked by hand: 0 -> (0 - 0.1307) / 0.3081, 255 -> (1 - 0.1307) / 0.3081, 128 -> (128/255 - 0.1307) / 0.3081
    raw = torch.from_numpy(images[2]).float()
    for value, expected in ((0, -0.42421291), (255, 2.82148653), (128, 1.20498643)):
        assert torch.allclose(image[0][raw == value], torch.tensor(expected), atol=1e-5)
    x, y = labels[2, :2]
    assert target.tolist() == [x, y, x + 27, y + 27]


def test_labels_never_change_on_access(tmp_path):
    write_synthetic_split(str(tmp_path), 1, "train", 4, seed=0)
    dataset = ClutteredMNIST(str(tmp_path), 1, "train")
    first = dataset[0][1].clone()
    for _ in range(3):
        dataset[0][1].add_(5)  # a caller editing the returned target must not reach the dataset
        dataset[[0, 1]]
    assert torch.equal(dataset[0][1], first)


def test_uint8_and_float64_files_give_identical_tensors(tmp_path):
    write_synthetic_split(str(tmp_path / "u8"), 4, "train", 6, seed=3)
    write_synthetic_split(str(tmp_path / "f64"), 4, "train", 6, seed=3, dtype=np.float64)
    assert np.load(data_files(str(tmp_path / "f64"), 4, "train")[0]).dtype == np.float64
    a, b = ClutteredMNIST(str(tmp_path / "u8"), 4, "train"), ClutteredMNIST(str(tmp_path / "f64"), 4, "train")
    assert torch.equal(a[list(range(6))][0], b[list(range(6))][0])
    assert torch.equal(a.targets, b.targets)


def test_batch_indexing_equals_items(tmp_path):
    write_synthetic_split(str(tmp_path), 4, "train", 10, seed=0)
    dataset = ClutteredMNIST(str(tmp_path), 4, "train")
    images, targets = dataset[[3, 7]]
    assert torch.equal(images[1], dataset[7][0]) and torch.equal(targets[0], dataset[3][1])


def test_missing_files_name_the_generating_command(tmp_path):
    with pytest.raises(DataError, match=r"missing data file .*python clutter_mnist_scale.py --datapath .* --digits 5"):
        ClutteredMNIST(str(tmp_path / "nowhere"), 5, "train")


def test_malformed_files(tmp_path):
    data_path, label_path = data_files(str(tmp_path), 2, "train")
    os.makedirs(os.path.dirname(data_path))
    np.save(data_path, np.zeros((3, 28, 28), np.uint8))
    np.save(label_path, np.zeros((3, 4)))
    with pytest.raises(DataError, match="malformed.*clutter_mnist_scale.py"):
        ClutteredMNIST(str(tmp_path), 2, "train")
    with open(data_path, "wb") as stream:
        stream.write(b"not an npy file")
    with pytest.raises(DataError, match="cannot read"):
        ClutteredMNIST(str(tmp_path), 2, "train")
    np.save(data_path, np.full((3, 84, 84), 300.0))
    with pytest.raises(DataError, match="whole numbers"):
        ClutteredMNIST(str(tmp_path), 2, "train")


def test_unknown_digit_and_split(tmp_path):
    with pytest.raises(DataError, match="unknown digit"):
        ClutteredMNIST(str(tmp_path), 12, "train")
    with pytest.raises(DataError, match="unknown split"):
        ClutteredMNIST(str(tmp_path), 1, "val")


@pytest.mark.parametrize(
    "label, problem",
    [
        ([-3, 10, 28, 28], "starts outside the image"),
        ([60, 10, 28, 28], "ends outside the image"),
        ([10, 70, 28, 28], "ends outside the image"),
        ([10, 10, 0, 28], "is empty"),
        ([10, 10, 28, -5], "is empty"),
        ([np.nan, 10, 28, 28], "is not finite"),
        ([10, 10, np.inf, 28], "is not finite"),
    ],
)
def test_bad_labels_name_the_file_row_and_problem(tmp_path, label, problem):
    write_synthetic_split(str(tmp_path), 3, "test", 6, dtype=np.float64)
    _, label_path = data_files(str(tmp_path), 3, "test")
    labels = np.load(label_path)
    labels[4] = label
    labels[5] = [np.nan] * 4  # a later bad row: the first one is reported
    np.save(label_path, labels)
    with pytest.raises(DataError) as error:
        ClutteredMNIST(str(tmp_path), 3, "test")
    message = str(error.value)
    assert message.startswith(f"{label_path}: row 4,") and problem in message and "\n" not in message


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_pixels_must_be_numbers(tmp_path, dtype):
    write_synthetic_split(str(tmp_path), 3, "train", 4)
    data_path, _ = data_files(str(tmp_path), 3, "train")
    np.save(data_path, np.load(data_path).astype(dtype))
    with pytest.raises(DataError, match=f"{data_path}: pixel values must be whole numbers in 0..255, got dtype"):
        ClutteredMNIST(str(tmp_path), 3, "train")


def test_empty_split_is_an_error(tmp_path):
    write_synthetic_split(str(tmp_path), 3, "test", 0)
    with pytest.raises(DataError, match="holds no images"):
        ClutteredMNIST(str(tmp_path), 3, "test")


def test_load_arrays_missing_background_files_name_the_flag(tmp_path):
    with pytest.raises(DataError, match="--bg_name patch") as error:
        load_arrays(str(tmp_path), 3, "test", bg="patch")
    assert os.path.join(str(tmp_path), "test", "patch", "3_data.npy") in str(error.value)
    with pytest.raises(DataError, match="unknown background"):
        load_arrays(str(tmp_path), 3, "test", bg="fog")
    with pytest.raises(DataError) as error:
        load_arrays(str(tmp_path), 3, "test")
    assert "--bg_name" not in str(error.value) and "moreclutter" in str(error.value)


def test_an_npz_archive_under_the_npy_name_is_refused(tmp_path):
    from utils.errors import DataError

    datapath = str(tmp_path)
    write_synthetic_split(datapath, 4, "test", 4)
    data_path, _ = data_files(datapath, 4, "test")
    images = np.load(data_path)
    with open(data_path, "wb") as stream:
        np.savez(stream, images=images)
    with pytest.raises(DataError, match="is an .npz archive, not a .npy array"):
        load_arrays(datapath, 4, "test")


def test_a_corrupted_dataset_reads_the_2021_data_and_normalises_with_given_statistics(tmp_path):
    """bg `moreclutter` reads the 2021 layout; `norm` sets the statistics (the authors' logged adaptation)."""
    datapath = str(tmp_path)
    write_synthetic_split(datapath, 2, "test", 6, seed=3)
    plain = ClutteredMNIST(datapath, 2, "test")
    logged = CorruptedMNIST(datapath, "moreclutter", 2, "test", norm=(0.0334, 0.1653))
    assert torch.equal(logged.images, plain.images) and torch.equal(logged.targets, plain.targets)
    assert torch.allclose(logged[[0, 1]][0], (plain.images[[0, 1]].float()[:, None] / 255 - 0.0334) / 0.1653)
    assert torch.equal(plain[[0]][0], (plain.images[[0]].float()[:, None] / 255 - 0.1307) / 0.3081)
