"""Detection datasets for the loaders: keyed training samples and ordered test samples.

Records are stored pickled in one byte buffer: COCO train's 118k records as Python objects take
gigabytes once copied into every data worker, a numpy buffer a fraction of that.

Training samples are keyed by (epoch, index) and draw everything from ``sample_rng(SEED, epoch,
index)``, as pretraining's; a file that cannot be read is logged once, named in the sample's
``bad_files`` and replaced by another image drawn from the same generator.
"""

import pickle

import numpy as np
import torch

from ..datasets import MAX_CONSECUTIVE_FAILURES, sample_rng
from ..image_io import BadImageError, UnreadableDataError, warn_unreadable_once
from .mapper import DetectionMapper, read_record_image

__all__ = ["DetectionTestDataset", "DetectionTrainDataset", "PackedRecords"]


class PackedRecords:
    """A read-only list of records, each pickled into one shared uint8 buffer."""

    def __init__(self, records):
        blobs = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records]
        self._offsets = np.zeros(len(blobs) + 1, np.int64)
        np.cumsum([len(b) for b in blobs], out=self._offsets[1:])
        self._buffer = np.frombuffer(b"".join(blobs), np.uint8) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} out of range for {len(self)} records")
        return pickle.loads(self._buffer[self._offsets[i] : self._offsets[i + 1]].tobytes())

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class DetectionTrainDataset(torch.utils.data.Dataset):
    """Training samples of ``records`` keyed by (epoch, index).

    Args:
        records: dataset records (already filtered for training).
        mapper: a training DetectionMapper.
        seed: base of every sample's generator (SEED).
    """

    def __init__(self, records, mapper: DetectionMapper, seed: int = 0):
        if not mapper.is_train:
            raise ValueError("DetectionTrainDataset needs a training mapper (is_train=True)")
        if len(records) == 0:
            raise ValueError("no training images left (see the dataset counts in the log)")
        self.records = records if isinstance(records, PackedRecords) else PackedRecords(records)
        self.mapper = mapper
        self.seed = seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> dict:
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad_files = []
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            record = self.records[index]
            plan = self.mapper.plan(record, rng)
            try:
                image = read_record_image(record)
            except BadImageError as e:
                bad_files.append(record["file_name"])
                warn_unreadable_once(record["file_name"], e)
                index = int(rng.integers(len(self.records)))
                continue
            sample = self.mapper(record, image, plan)
            sample["bad_files"] = bad_files
            return sample
        raise UnreadableDataError(
            f"{MAX_CONSECUTIVE_FAILURES} consecutive unreadable images in the detection training "
            f"set (the last: {record['file_name']}); check the data"
        )

    def __getitems__(self, keys) -> list:
        """A batch of samples (the DataLoader fetches a batch's keys at once through this)."""
        return [self[key] for key in keys]


class DetectionTestDataset(torch.utils.data.Dataset):
    """Test samples of ``records`` by position; no randomness.

    An unreadable test image is an error naming it: evaluating on a silent subset would change the
    metric. (Images absent on disk were already dropped, and counted, when the dataset loaded.)
    """

    def __init__(self, records, mapper: DetectionMapper):
        if mapper.is_train:
            raise ValueError("DetectionTestDataset needs a test mapper (is_train=False)")
        self.records = records if isinstance(records, PackedRecords) else PackedRecords(records)
        self.mapper = mapper

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        record = self.records[i]
        try:
            image = read_record_image(record)
        except BadImageError as e:
            raise ValueError(f"cannot evaluate on an unreadable test image: {e}") from None
        return self.mapper(record, image, self.mapper.plan(record))
