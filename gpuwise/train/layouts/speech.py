"""Speech-to-text: ``DIR/<stem>.(wav|flac)`` with ``DIR/<stem>.txt`` (or LibriSpeech's
``<speaker>-<chapter>.trans.txt`` beside the audio: one ``<stem> TRANSCRIPT`` per line), in any
subfolders of DIR.

Audio is read with soundfile (libsndfile) at 16 kHz only: gpuwise does not resample. The
spectrogram is deepspeech.pytorch's (``data/data_loader.py``, ``SpectrogramParser``): a 20 ms
Hamming window (320 samples, scipy's symmetric window, which it passes to librosa), a 10 ms hop,
the magnitude's log1p, normalised per utterance to mean 0 and standard deviation 1: 161 bins by
1 + samples / 160 frames. Transcripts are upper-cased and mapped to the model's 29 labels
(``DS2_ALPHABET``); other characters (digits, punctuation) are dropped, as deepspeech.pytorch
drops characters missing from its labels.

A batch is padded to its longest utterance and carries each utterance's frames and transcript
length, which the CTC loss uses (``_ds2_loss``). Utterances longer than ``--seq-len`` frames are
left out, as deepspeech.pytorch's manifests leave out those past a maximum duration.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.train.data import TrainData, layout_error
from gpuwise.workloads.registry import Shape, Workload

SAMPLE_RATE = 16_000
WINDOW = 320  # 20 ms
HOP = 160  # 10 ms
AUDIO_SUFFIXES = (".wav", ".flac")

Item = tuple[torch.Tensor, torch.Tensor]  # spectrogram (161, T), labels (S,)


@dataclass(frozen=True)
class Utterance:
    audio: Path
    labels: tuple[int, ...]
    frames: int


def spectrogram_frames(samples: int) -> int:
    """Frames of a centred STFT with a 10 ms hop."""
    return 1 + samples // HOP


def spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """deepspeech.pytorch's log-magnitude spectrogram of 16 kHz audio, normalised: (161, frames)."""
    window = torch.hamming_window(WINDOW, periodic=False, dtype=audio.dtype)
    stft = torch.stft(audio, n_fft=WINDOW, hop_length=HOP, win_length=WINDOW, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    spect = torch.log1p(stft.abs())
    return (spect - spect.mean()) / spect.std().clamp(min=1e-6)


def encode_transcript(text: str) -> tuple[int, ...]:
    """Characters to the model's labels (1-28); characters it has no label for are dropped."""
    from gpuwise.workloads.speech import DS2_ALPHABET, DS2_BLANK

    index = {c: i for i, c in enumerate(DS2_ALPHABET) if i != DS2_BLANK}
    kept = "".join(c if c in index else " " if c.isspace() else "" for c in text.upper())
    return tuple(index[c] for c in " ".join(kept.split()))  # words one space apart, none at the ends


def _transcripts(folder: Path, cache: dict[Path, dict[str, str]]) -> dict[str, str]:
    """LibriSpeech's ``*.trans.txt`` lines in a folder, by utterance id."""
    if folder not in cache:
        found: dict[str, str] = {}
        for trans in folder.glob("*.trans.txt"):
            for line in trans.read_text().splitlines():
                stem, _, text = line.partition(" ")
                if stem:
                    found[stem] = text
        cache[folder] = found
    return cache[folder]


def find_utterances(workload: Workload, root: Path) -> list[tuple[Path, str]]:
    audio = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not audio:
        raise layout_error(workload, root, "no .wav or .flac files")
    cache: dict[Path, dict[str, str]] = {}
    found, missing = [], []
    for path in audio:
        text_file = path.with_suffix(".txt")
        if text_file.is_file():
            found.append((path, text_file.read_text()))
        elif path.stem in (librispeech := _transcripts(path.parent, cache)):
            found.append((path, librispeech[path.stem]))
        else:
            missing.append(path)
    if missing:
        raise layout_error(
            workload, root, f"{len(missing)} of {len(audio)} audio files have no transcript (first: {missing[0]})"
        )
    return found


def _frames(path: Path) -> int:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise GpuwiseError(f"--data: cannot read audio {path} ({e}); remove or replace it") from e
    if info.samplerate != SAMPLE_RATE:
        raise GpuwiseError(
            f"--data: {path} is sampled at {info.samplerate} Hz; deepspeech2 takes 16 kHz and gpuwise does not "
            "resample: convert the files first (e.g. sox IN -r 16000 OUT)"
        )
    return spectrogram_frames(info.frames)


class SpeechData(Dataset[Item]):
    def __init__(self, utterances: list[Utterance]) -> None:
        self.utterances = utterances

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> Item:
        import soundfile

        utterance = self.utterances[index]
        audio, _ = soundfile.read(str(utterance.audio), dtype="float32", always_2d=True)
        mono = torch.from_numpy(audio).mean(dim=1)  # deepspeech.pytorch averages the channels
        return spectrogram(mono), torch.tensor(utterance.labels, dtype=torch.int64)


def collate_speech(items: list[Item]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(spect (N, 1, 161, T_max) zero-padded, targets (N, S_max) padded with the blank, frames (N,),
    target lengths (N,)): ``_ds2_loss``'s real-data batch."""
    frames = torch.tensor([spect.size(1) for spect, _ in items], dtype=torch.int64)
    lengths = torch.tensor([len(labels) for _, labels in items], dtype=torch.int64)
    spects = torch.zeros(len(items), 1, items[0][0].size(0), int(frames.max()))
    targets = torch.zeros(len(items), max(1, int(lengths.max())), dtype=torch.int64)
    for i, (spect, labels) in enumerate(items):
        spects[i, 0, :, : spect.size(1)] = spect
        targets[i, : len(labels)] = labels
    return spects, targets, frames, lengths


def open_speech(workload: Workload, shape: Shape, root: Path, seed: int) -> TrainData:
    if not root.is_dir():
        raise layout_error(workload, root, "is a file, not a folder")
    assert shape.seq_len is not None
    found = find_utterances(workload, root)
    utterances = [Utterance(audio, encode_transcript(text), _frames(audio)) for audio, text in found]
    kept = [u for u in utterances if u.frames <= shape.seq_len]
    if not kept:
        longest = max(u.frames for u in utterances)
        raise GpuwiseError(
            f"--data {root}: every utterance is longer than --seq-len {shape.seq_len} frames (10 ms each); "
            f"use --seq-len {longest} to train on all of them"
        )
    left_out = len(utterances) - len(kept)
    note = f", {left_out:,} longer than --seq-len {shape.seq_len} left out" if left_out else ""
    minutes = sum(u.frames for u in kept) / 100 / 60
    return TrainData(
        dataset=SpeechData(kept),
        collate=collate_speech,
        layout="audio+transcripts",
        description=f"speech {root}: {len(kept):,} utterances ({minutes:,.1f} min at 16 kHz){note}",
        batch_shape=lambda n: replace(shape, seq_len=padded_frames([u.frames for u in kept], n)),
    )


def padded_frames(frames: list[int], batch_size: int, draws: int = 256) -> int:
    """The expected padded length of a batch: the mean, over random batches, of their longest utterance."""
    if batch_size >= len(frames):
        return max(frames)
    rng = random.Random(0)
    return math.ceil(sum(max(rng.sample(frames, batch_size)) for _ in range(draws)) / draws)
