"""Real training data: every layout loads into the batch its workload trains on, a wrong layout gets
one line naming the layout expected, and the loss goes down on small generated data sets."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gpuwise.errors import GpuwiseError
from gpuwise.train import toydata
from gpuwise.train.data import TrainData, open_data
from gpuwise.train.layouts.speech import collate_speech, encode_transcript
from gpuwise.workloads import Shape, Workload, get_workload
from gpuwise.workloads.speech import DeepSpeech2
from tests.helpers import make_workload


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small data set per layout, made once for the module."""
    root = tmp_path_factory.mktemp("toy")
    return {
        "images": toydata.make_images(root / "images", n=24),
        "segmentation": toydata.make_segmentation(root / "segmentation", n=8),
        "detection": toydata.make_detection(root / "detection", n=6),
        "speech": toydata.make_speech(root / "speech", n=16),
        "tokens": toydata.make_tokens(root / "tokens.npy", n=4096),
    }


def _batch(data: TrainData, n: int, start: int = 0) -> Any:
    return data.collate([data.dataset[i] for i in range(start, start + n)])


def _structure(batch: Any) -> Any:
    """The batch's pytree with each tensor replaced by (dtype, rank): what forward_loss relies on."""
    if isinstance(batch, torch.Tensor):
        return (batch.dtype, batch.dim())
    if isinstance(batch, dict):
        return {k: _structure(v) for k, v in sorted(batch.items())}
    if isinstance(batch, list | tuple):
        return type(batch), [_structure(v) for v in batch]
    return type(batch)


# workload, shape, toy data set, batch size. One model per family (llama-1b is too big to build here:
# its batch is checked against make_batch only).
CASES = [
    ("resnet18", Shape(image_size=32), "images", 2),
    ("unet", Shape(image_size=32), "segmentation", 2),
    ("fasterrcnn_resnet50_fpn", Shape(image_size=64), "detection", 2),
    ("ssd300", Shape(), "detection", 2),
    ("gpt2", Shape(seq_len=16), "tokens", 2),
    ("bert-base", Shape(seq_len=16), "tokens", 2),
]


@pytest.mark.parametrize(("name", "shape", "kind", "batch_size"), CASES, ids=[c[0] for c in CASES])
def test_each_layout_gives_the_batch_forward_loss_takes(
    toy: dict[str, Path], name: str, shape: Shape, kind: str, batch_size: int
) -> None:
    workload = get_workload(name)
    data = open_data(workload, shape, toy[kind])
    batch = _batch(data, batch_size)
    assert _structure(batch) == _structure(workload.make_batch(batch_size, shape))
    torch.manual_seed(0)
    model = workload.build_model(shape)
    with torch.no_grad():
        loss = workload.forward_loss(model, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_llama_reads_the_same_token_file(toy: dict[str, Path]) -> None:
    workload, shape = get_workload("llama-1b"), Shape(seq_len=64)
    data = open_data(workload, shape, toy["tokens"])
    assert len(data.dataset) == 4096 // 64
    assert _structure(_batch(data, 2)) == _structure(workload.make_batch(2, shape))


def test_speech_batch_is_padded_and_carries_lengths(toy: dict[str, Path]) -> None:
    workload, shape = get_workload("deepspeech2"), Shape(seq_len=400)
    data = open_data(workload, shape, toy["speech"])
    assert len(data.dataset) == 16
    items = [data.dataset[i] for i in range(4)]
    spect, targets, frames, lengths = data.collate(items)
    assert spect.shape == (4, 1, 161, max(item[0].size(1) for item in items))
    assert frames.tolist() == [item[0].size(1) for item in items]
    assert lengths.tolist() == [len(item[1]) for item in items]
    for i, (one, labels) in enumerate(items):
        assert torch.equal(spect[i, 0, :, : one.size(1)], one) and (spect[i, 0, :, one.size(1) :] == 0).all()
        assert torch.equal(targets[i, : len(labels)], labels)
    # Each utterance is normalised on its own (deepspeech.pytorch); 1 + samples/160 frames.
    assert abs(float(items[0][0].mean())) < 1e-4 and abs(float(items[0][0].std()) - 1) < 1e-3
    loss = workload.forward_loss(DeepSpeech2(hidden_size=16, rnn_layers=1), (spect, targets, frames, lengths))
    assert torch.isfinite(loss) and loss > 0


def test_transcripts_map_to_the_models_labels() -> None:
    # blank 0, ' 1, A-Z 2-27, space 28; case and repeated spaces do not matter, digits are dropped
    assert encode_transcript("It's  a cat 9") == (10, 21, 1, 20, 28, 2, 28, 4, 2, 21)


class FrameLocal(torch.nn.Module):
    """Logits (T', N, 29) from every second frame's first 29 bins: DeepSpeech2's output length, and
    no frame sees another, so padding cannot change the real frames' logits."""

    def forward(self, spect: torch.Tensor) -> torch.Tensor:
        return spect[:, 0, :29, ::2].permute(2, 0, 1)


def test_ctc_loss_ignores_the_padding() -> None:
    workload, model = get_workload("deepspeech2"), FrameLocal()
    torch.manual_seed(0)
    short = (torch.randn(161, 30), torch.tensor([2, 3, 4]))
    long = (torch.randn(161, 50), torch.tensor([5, 6, 7, 8, 9]))
    pair = workload.forward_loss(model, collate_speech([short, long])) * 2  # the loss is a mean over the batch
    alone = workload.forward_loss(model, collate_speech([short])) + workload.forward_loss(model, collate_speech([long]))
    assert torch.allclose(pair, alone)
    spect, targets, _, _ = collate_speech([short, long])  # the same batch read as full length: differs
    assert not torch.allclose(workload.forward_loss(model, (spect, targets)) * 2, alone)


def test_synthetic_is_deterministic_and_sized() -> None:
    workload = make_workload(lambda: torch.nn.Linear(2, 1), lambda n: torch.randn(n, 2), lambda m, b: m(b).sum())
    data = open_data(workload, Shape(), "synthetic", synthetic_samples=12)
    assert len(data.dataset) == 12 and data.layout == "synthetic"
    assert torch.equal(_batch(data, 3, start=4), _batch(data, 3, start=4))
    assert not torch.equal(_batch(data, 3, start=4), _batch(data, 3, start=5))


@pytest.mark.parametrize(("name", "kind"), [("resnet18", "images"), ("unet", "segmentation"), ("bert-base", "tokens")])
def test_augmentations_depend_on_seed_epoch_and_index_only(toy: dict[str, Path], name: str, kind: str) -> None:
    workload = get_workload(name)
    shape = workload.resolve_shape(**({"seq_len": 16} if kind == "tokens" else {"image_size": 32}))
    first, second = open_data(workload, shape, toy[kind]), open_data(workload, shape, toy[kind])
    torch.manual_seed(1)
    a = _batch(first, 2)
    torch.manual_seed(2)  # the process's RNG plays no part
    _ = second.dataset[5]  # nor the order items are read in
    b = _batch(second, 2)
    first.set_epoch(1)
    c = _batch(first, 2)
    assert torch.equal(_flat(a), _flat(b))
    assert not torch.equal(_flat(a), _flat(c))


def _flat(batch: Any) -> torch.Tensor:
    return torch.cat([t.flatten().float() for t in (batch.values() if isinstance(batch, dict) else batch)])


def test_coco_category_ids_become_contiguous_labels(toy: dict[str, Path]) -> None:
    data = open_data(get_workload("retinanet_resnet50_fpn"), Shape(image_size=64), toy["detection"])
    labels = torch.cat([data.dataset[i][1]["labels"] for i in range(len(data.dataset))])
    assert set(labels.tolist()) <= {1, 2, 3} and set(toydata.COCO_CATEGORY_IDS) == {1, 3, 5}
    assert "3 categories" in data.description


# --- the loss goes down on real files read through the loaders --------------------------


def _train(workload: Workload, model: torch.nn.Module, batches: list[Any], steps: int, lr: float) -> list[float]:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = workload.forward_loss(model, batches[step % len(batches)])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow
def test_resnet18_learns_the_rendered_shapes(toy: dict[str, Path]) -> None:
    workload, shape = get_workload("resnet18"), Shape(image_size=32)
    data = open_data(workload, shape, toy["images"])
    batches = [_batch(data, 8, start=0), _batch(data, 8, start=8)]  # shapes alternate: 3 classes in each
    torch.manual_seed(0)
    losses = _train(workload, workload.build_model(shape), batches, steps=10, lr=1e-3)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    # From ~ln(1000) to below ln(3): better than knowing only which three classes exist.
    assert first > math.log(100) and last < math.log(3) and last < 0.3 * first, losses


@pytest.mark.slow
def test_deepspeech2_learns_the_synthesised_utterances(toy: dict[str, Path]) -> None:
    workload, shape = get_workload("deepspeech2"), Shape(seq_len=400)
    data = open_data(workload, shape, toy["speech"])
    batches = [_batch(data, 8, start=0), _batch(data, 8, start=8)]
    torch.manual_seed(0)
    model = DeepSpeech2(hidden_size=32, rnn_layers=1)  # the workload's layers, narrower: seconds on a CPU
    losses = _train(workload, model, batches, steps=12, lr=1e-2)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, losses


# --- wrong layouts: one line naming the layout expected ---------------------------------


def _error(name: str, source: Path | str, shape: Shape | None = None) -> str:
    workload = get_workload(name)
    with pytest.raises(GpuwiseError) as raised:
        open_data(workload, shape or workload.default_shape, source)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_missing_path_names_the_layout(tmp_path: Path) -> None:
    assert "expected an ImageFolder" in _error("resnet18", tmp_path / "nowhere")
    assert "expected a token file" in _error("gpt2", tmp_path / "nowhere.bin")


def test_wrong_image_folder(tmp_path: Path) -> None:
    assert "expected an ImageFolder: DIR/<class>/<image>" in _error("resnet50", tmp_path)
    (tmp_path / "file.png").write_bytes(b"")
    assert "is a file, not a folder" in _error("resnet50", tmp_path / "file.png")


def test_more_classes_than_the_classifier_has(toy: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gpuwise.train.layouts.images.model_classes", lambda workload: 2)
    message = _error("resnet18", toy["images"])
    assert "3 classes but resnet18 has 2 outputs" in message and "keep at most 2 subfolders" in message


def test_wrong_segmentation_folders(tmp_path: Path, toy: dict[str, Path]) -> None:
    assert "no images/ and masks/ folder; expected DIR/images/<stem>" in _error("unet", tmp_path)
    images = tmp_path / "seg"
    (images / "masks").mkdir(parents=True)
    toydata.make_segmentation(images, n=2)
    (images / "masks" / "00001.png").unlink()
    assert "1 of 2 images have no masks/<stem>.png (first: 00001.png)" in _error("unet", images)


def test_a_mask_class_the_model_lacks(tmp_path: Path) -> None:
    from PIL import Image

    root = toydata.make_segmentation(tmp_path / "seg", n=1)
    Image.new("L", (64, 64), 2).save(root / "masks" / "00000.png")  # class 2: unet has 0 and 1
    data = open_data(get_workload("unet"), Shape(image_size=32), root)
    with pytest.raises(GpuwiseError, match=r"has class 2, but the model predicts 2 classes \(0-1\); relabel"):
        data.dataset[0]
    data = open_data(get_workload("fcn_resnet50"), Shape(image_size=32), root)  # 21 classes: fine
    assert data.dataset[0][1].max() == 2


def test_wrong_coco(tmp_path: Path, toy: dict[str, Path]) -> None:
    assert "no annotations.json; expected COCO style" in _error("ssd300", tmp_path)
    (tmp_path / "annotations.json").write_text("{not json")
    assert "is not valid JSON" in _error("ssd300", tmp_path)
    coco = json.loads((toy["detection"] / "annotations.json").read_text())
    (tmp_path / "annotations.json").write_text(json.dumps({**coco, "images": coco["images"][:1]}))
    assert "image '00000.png' is in neither images/" in _error("ssd300", tmp_path)
    categories = [{"id": i, "name": str(i)} for i in range(1, 82)]
    images = toy["detection"] / "images"  # absolute file_names: found wherever the JSON lies
    elsewhere = [{**image, "file_name": str(images / image["file_name"])} for image in coco["images"]]
    (tmp_path / "annotations.json").write_text(json.dumps({**coco, "images": elsewhere, "categories": categories}))
    assert "81 categories but ssd300 tells apart 80" in _error("ssd300", tmp_path)
    (tmp_path / "annotations.json").write_text(json.dumps({"images": []}))
    assert "annotations.json has no list 'annotations'" in _error("ssd300", tmp_path)


def test_wrong_speech_folder(tmp_path: Path) -> None:
    import soundfile

    assert "no .wav or .flac files; expected DIR/<stem>.(wav|flac) at 16 kHz" in _error("deepspeech2", tmp_path)
    soundfile.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 8000)
    assert "1 of 1 audio files have no transcript" in _error("deepspeech2", tmp_path)
    (tmp_path / "a.txt").write_text("HELLO")
    assert "is sampled at 8000 Hz; deepspeech2 takes 16 kHz" in _error("deepspeech2", tmp_path)
    soundfile.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    assert "longer than --seq-len 50 frames" in _error("deepspeech2", tmp_path, Shape(seq_len=50))
    assert len(open_data(get_workload("deepspeech2"), Shape(seq_len=101), tmp_path).dataset) == 1


def test_librispeech_transcripts(tmp_path: Path) -> None:
    import soundfile

    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    for stem in ("19-198-0000", "19-198-0001"):
        soundfile.write(chapter / f"{stem}.flac", np.zeros(3200, dtype=np.float32), 16000)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    data = open_data(get_workload("deepspeech2"), Shape(seq_len=100), tmp_path)
    assert data.dataset[1][1].tolist() == list(encode_transcript("CHAPTER ONE"))


def test_wrong_token_files(tmp_path: Path) -> None:
    assert "not a token file by its name; expected a token file: FILE.npy" in _error("gpt2", _touch(tmp_path / "t.txt"))
    assert "is a folder" in _error("gpt2", tmp_path)
    np.array([1, 2, 50257], dtype=np.uint16).tofile(tmp_path / "big.bin")
    message = _error("gpt2", tmp_path / "big.bin", Shape(seq_len=2))
    assert "token id 50257 is outside gpt2's vocabulary (0-50256)" in message
    np.arange(100, dtype=np.uint16).tofile(tmp_path / "few.bin")
    message = _error("gpt2", tmp_path / "few.bin", Shape(seq_len=128))
    assert "100 tokens, fewer than one window of --seq-len 128" in message
    assert "a plain .bin is ambiguous; rename it FILE.u32.bin" in _error("llama-1b", tmp_path / "few.bin")
    np.save(tmp_path / "floats.npy", np.zeros(10))
    assert "holds a 1-D float64 array, not 1-D integers" in _error("gpt2", tmp_path / "floats.npy")
    np.arange(200, dtype=np.uint32).tofile(tmp_path / "ok.u32.bin")
    assert len(open_data(get_workload("llama-1b"), Shape(seq_len=50), tmp_path / "ok.u32.bin").dataset) == 4


def _touch(path: Path) -> Path:
    path.write_bytes(b"\0\0")
    return path


@pytest.mark.parametrize("name", ["gnmt", "bert-large-squad"])
def test_synthetic_only_workloads_say_so(tmp_path: Path, name: str) -> None:
    assert f"workload '{name}' trains on synthetic data only; use --data synthetic" in _error(name, tmp_path)


def test_every_zoo_workload_names_a_known_layout_or_none() -> None:
    """The registry entry names its layout; the family string is only what `gpuwise workloads` shows."""
    from gpuwise.train.data import LAYOUTS
    from gpuwise.workloads import list_workloads

    layouts = {w.name: w.data_layout for w in list_workloads()}
    assert set(layouts.values()) - {None} == set(LAYOUTS)  # every layout is used, and no other name
    assert layouts["resnet50"] == "images" and layouts["deepspeech2"] == "speech" and layouts["gpt2"] == "tokens"
    assert layouts["gnmt"] is None and layouts["bert-large-squad"] is None


def test_a_user_workload_trains_on_its_own_batches(tmp_path: Path) -> None:
    workload = make_workload(lambda: torch.nn.Linear(2, 1), lambda n: torch.randn(n, 2), lambda m, b: m(b).sum())
    workload = Workload(**{**workload.__dict__, "family": "user"})
    with pytest.raises(GpuwiseError, match="is your own, so gpuwise cannot read a data set for it; use --data synth"):
        open_data(workload, Shape(), tmp_path)


def test_toydata_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toydata.main(["tokens", str(tmp_path / "t.u32.bin"), "--n", "40"])
    assert np.fromfile(tmp_path / "t.u32.bin", dtype=np.uint32).shape == (40,)
    assert "wrote tokens" in capsys.readouterr().out


def test_speech_batches_are_predicted_at_their_padded_length() -> None:
    # A batch is padded to its longest utterance: the expected length lies between the mean and the
    # longest, and grows with the batch size (train's prediction and FLOPs use it, not --seq-len).
    from gpuwise.train.layouts.speech import padded_frames

    frames = [50] * 90 + [500] * 10
    assert padded_frames(frames, 1) == pytest.approx(95, rel=0.3)  # about the mean
    assert 95 < padded_frames(frames, 8) < 500
    assert padded_frames(frames, 8) < padded_frames(frames, 32) <= 500
    assert padded_frames(frames, 200) == 500  # a batch as large as the data holds the longest


def test_bert_predicts_fifteen_percent_of_each_window_as_the_synthetic_batch_does(toy: dict[str, Path]) -> None:
    """Each BERT example predicts ``masked_count`` of its non-special positions, as many as the synthetic
    batch: the dense masked-LM head picks that many positions per sequence, so both must have them."""
    from gpuwise.train.layouts.tokens import CLS, SEP
    from gpuwise.workloads.language import IGNORE_INDEX, masked_count

    data = open_data(get_workload("bert-base"), Shape(seq_len=40), toy["tokens"])
    for i in range(8):
        item = data.dataset[i]
        predicted = item["labels"] != IGNORE_INDEX
        assert int(predicted.sum()) == masked_count(40) == 6
        assert not predicted[0] and not predicted[-1] and item["input_ids"][0] == CLS and item["input_ids"][-1] == SEP
    synthetic = get_workload("bert-base").make_batch(3, Shape(seq_len=40))
    assert ((synthetic["labels"] != IGNORE_INDEX).sum(dim=1) == 6).all()
