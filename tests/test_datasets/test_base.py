"""ReIDDataset: listed images that are missing or unreadable fail before training, in one line."""

from __future__ import annotations

import pytest
from PIL import Image

from promptsg.datasets import ReIDDataset
from promptsg.errors import ConfigError, DataError


class ListDataset(ReIDDataset):
    """A data set over an explicit list of paths (pid = position // 2)."""

    def __init__(self, paths, **kwargs):
        self.paths = paths
        super().__init__(**kwargs)

    def load_samples(self):
        return [dict(img_path=str(p), pid=i // 2) for i, p in enumerate(self.paths)]


@pytest.fixture
def folder(tmp_path):
    for i in range(4):
        Image.new('RGB', (8, 16), (i * 40, 0, 0)).save(tmp_path / f'{i}.jpg')
    (tmp_path / 'notes.jpg').write_text('not an image')
    return tmp_path


def test_clean_list_loads(folder):
    ds = ListDataset([folder / f'{i}.jpg' for i in range(4)], data_root=str(folder))
    assert len(ds) == 4 and ds.metainfo['num_classes'] == 2


def test_missing_images_are_counted_and_named(folder):
    paths = [folder / '0.jpg', folder / 'gone1.jpg', folder / 'gone2.jpg']
    with pytest.raises(
        DataError, match=r'^2 listed image\(s\) are missing .*gone1\.jpg, gone2\.jpg'
    ):
        ListDataset(paths, data_root=str(folder))


def test_unreadable_image_fails_before_training(folder):
    paths = [folder / '0.jpg', folder / 'notes.jpg']
    with pytest.raises(DataError, match=r'1 listed image\(s\) are not readable .*notes\.jpg'):
        ListDataset(paths, data_root=str(folder))


def test_skip_missing_drops_missing_and_unreadable_only_when_asked(folder):
    paths = [folder / '0.jpg', folder / '1.jpg', folder / 'gone.jpg', folder / 'notes.jpg']
    ds = ListDataset(paths, data_root=str(folder), skip_missing=True)
    assert [d['img_path'] for d in ds.data_list] == [str(folder / '0.jpg'), str(folder / '1.jpg')]


def test_missing_data_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match='data_root does not exist'):
        ListDataset([], data_root=str(tmp_path / 'nowhere'))


@pytest.fixture
def truncated(folder):
    """A JPEG cut short: its header reads, its pixels do not."""
    noise = Image.effect_noise((128, 128), 64).convert('RGB')  # large pixel data after the header
    noise.save(folder / 'big.jpg', quality=95)
    data = (folder / 'big.jpg').read_bytes()
    (folder / 'cut.jpg').write_bytes(data[: len(data) * 2 // 3])
    return folder / 'cut.jpg'


def test_full_check_decodes_and_catches_truncated_files(folder, truncated):
    paths = [folder / '0.jpg', folder / '1.jpg', truncated]
    assert len(ListDataset(paths, data_root=str(folder))) == 3  # the header check passes it
    with pytest.raises(DataError, match=r'1 listed image\(s\) are not readable .*cut\.jpg'):
        ListDataset(paths, data_root=str(folder), check_images='full')
    ds = ListDataset(paths, data_root=str(folder), check_images='full', skip_missing=True)
    assert len(ds) == 2


def test_check_images_value_is_validated(folder):
    with pytest.raises(ConfigError, match="check_images='fast' is not valid.*'full'"):
        ListDataset([folder / '0.jpg'], data_root=str(folder), check_images='fast')
    assert len(ListDataset([folder / 'notes.jpg'], data_root=str(folder), check_images=False)) == 1
