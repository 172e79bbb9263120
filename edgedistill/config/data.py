"""Training texts and the STS pairs used for evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from edgedistill.config.base import TABLE_SOURCES, PositiveInt, StrictModel, resolve_path
from edgedistill.config.lm import MultipleChoice, PromptSource


class TextSource(StrictModel):
    """Unlabelled text for distillation.

    ``text-lines``: one text per line; ``python-docs``: the built-in corpus made from the Python
    documentation and standard-library docstrings on this machine; ``stsb``: the sentences of an
    STS Benchmark file (``split: train|dev|test`` for the copy shipped with edgedistill), scores ignored;
    ``jsonl`` / ``csv`` / ``tsv``: the texts of ``column`` (and of ``text_pair`` for sentence pairs);
    ``hf-dataset``: the same from a Hugging Face ``datasets`` folder written by ``save_to_disk`` or a
    JSON/CSV/Parquet/text data file (needs ``pip install datasets``); ``image-folder``: the images of a folder or of
    its class sub-folders, for image Tasks (labels unused).
    """

    source: Literal["text-lines", "python-docs", "stsb", "jsonl", "csv", "tsv", "hf-dataset", "image-folder"] = Field(
        description="Kind of text source (see above).")
    path: Path | None = None
    column: str | None = Field(None, description="jsonl/csv/tsv/hf-dataset: column holding the text (default text).")
    text_pair: str | None = Field(None, description="Second sentence's column of a pair; both become texts.")
    split: str | None = Field(None, description="hf-dataset: split of a DatasetDict (default: train); stsb: train, "
                              "dev or test of the STS Benchmark shipped with edgedistill (instead of a path).")
    required: bool = Field(True, description="If false, a missing file is skipped with a warning instead of an error.")
    limit: PositiveInt | None = Field(None, description="Use at most this many texts from this source.")

    @model_validator(mode="before")
    @classmethod
    def _path(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("source") == "stsb":
            data = with_bundled_split(data)
        needs_path = data.get("source") != "python-docs"
        if needs_path and data.get("path") is None:
            raise ValueError(f"source '{data['source']}' needs a 'path'")
        if data.get("source") == "python-docs" and data.get("path") is not None:
            raise ValueError("source 'python-docs' takes no 'path'")
        if data.get("path") is not None:
            data = dict(data, path=resolve_path(data["path"], info, must_exist=data.get("required", True)))
        return data

    @model_validator(mode="after")
    def _columns(self) -> TextSource:
        tabular = self.source in TABLE_SOURCES
        for key in ("column", "text_pair", "split"):
            split_applies = self.source in ("hf-dataset", "stsb")
            if getattr(self, key) is not None and not (split_applies if key == "split" else tabular):
                raise ValueError(f"'{key}' does not apply to source '{self.source}'")
        if self.source in ("jsonl", "csv", "tsv") and self.path is not None and self.path.is_file():
            from edgedistill.data.tables import check_columns, table_columns
            from edgedistill.errors import InputError

            wanted = [self.column or "text"] + ([self.text_pair] if self.text_pair else [])
            try:
                check_columns(table_columns(self.path, self.source), wanted, str(self.path))
            except InputError as err:  # becomes a validation error, so the message carries the key path
                raise ValueError(str(err)) from None
        return self


def with_bundled_split(data: dict[str, Any]) -> dict[str, Any]:
    """An ``stsb`` entry with ``split`` and no ``path`` reads the STS Benchmark shipped with edgedistill."""
    from edgedistill.data.stsb import bundled_split

    if data.get("split") is None:
        return data
    shipped = bundled_split(str(data["split"]))
    if data.get("path") is not None and Path(data["path"]) != shipped:  # a dumped config carries both: fine
        raise ValueError("give 'split' (the STS Benchmark shipped with edgedistill) or 'path', not both")
    return dict(data, path=shipped)


class StsSource(StrictModel):
    """An STS Benchmark file (tab-separated: genre, file, year, id, score, sentence1, sentence2): ``split`` names
    the copy shipped with edgedistill, ``path`` a file of your own."""

    source: Literal["stsb"] = Field("stsb", description="stsb: STS pairs (sentence-embedding); jsonl / csv / tsv: "
                                    "labelled texts, `column` and `label` (sequence-classification); image-folder: "
                                    "images in `path/<class>/` (image-classification).")
    split: Literal["train", "dev", "test"] | None = Field(None, description="Shipped STS Benchmark split.")
    path: Path = Field(description="An STS-format file (instead of `split`).")

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("path") is None and data.get("split") is None:
            raise ValueError("give 'split' (train, dev or test: the STS Benchmark shipped with edgedistill) or 'path'")
        return with_bundled_split(data) if isinstance(data, dict) else data

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)


class LabelledTable(StrictModel):
    """Texts with their labels (class ids, or the teacher's label names) in a JSONL/CSV/TSV file, for
    sequence-classification."""

    source: Literal["jsonl", "csv", "tsv"]
    path: Path
    column: str = Field("text", description="Column holding the text.")
    label: str = Field("label", description="Column holding the label.")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)

    @model_validator(mode="after")
    def _columns(self) -> LabelledTable:
        from edgedistill.data.tables import check_columns, table_columns
        from edgedistill.errors import InputError

        try:
            check_columns(table_columns(self.path, self.source), [self.column, self.label], str(self.path))
        except InputError as err:
            raise ValueError(str(err)) from None
        return self


class ImageFolder(StrictModel):
    """Images in ``path/<class>/<image>``, labelled by their folder's name (the teacher's label names, or class
    ids), for image-classification."""

    source: Literal["image-folder"]
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)


def eval_tag(data: Any) -> str:
    """Which kind of scored data an ``eval``/``test`` entry is, by its ``source`` (default stsb)."""
    source = data.get("source", "stsb") if isinstance(data, dict) else getattr(data, "source", "stsb")
    return {"stsb": "stsb", "image-folder": "image-folder"}.get(source, "table")


EvalSource = Annotated[
    Annotated[StsSource, Tag("stsb")] | Annotated[LabelledTable, Tag("table")]
    | Annotated[ImageFolder, Tag("image-folder")],
    Discriminator(eval_tag),
]
EVAL_KINDS = {"stsb": "sentence-embedding", "table": "sequence-classification", "image-folder": "image-classification"}


class DataConfig(StrictModel):
    train: list[TextSource] = Field(default_factory=list, description="Training samples (text-generation: real text, "
                                    "for held-out perplexity and, with a white-box teacher, distillation on text).")
    holdout: PositiveInt = Field(500, description="Samples held out of `train` to measure fidelity to the teacher "
                                 "(text-generation: perplexity).")
    prompts: PromptSource | None = Field(None, description="text-generation: the prompts the teacher answers.")
    heldout_prompts: PositiveInt = Field(32, description="text-generation: prompts kept out of training, for "
                                         "agreement with the teacher.")
    mc: MultipleChoice | None = Field(None, description="text-generation: multiple-choice questions (acc, acc_norm).")
    eval: EvalSource | None = Field(None, description="Scored data used to choose between students (dev split): "
                                    "STS pairs for sentence-embedding, labelled texts or an image folder for "
                                    "classification.")
    test: EvalSource | None = Field(None, description="Scored data reported only, never used for choices (test "
                                    "split), of the same kind as `eval`.")

    @field_validator("train", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    def check_task(self, task: str, needs_prompts: bool = True) -> None:
        """Raise ValueError when ``eval``/``test`` is not the kind of data ``task`` is scored on, or the data the
        task needs is missing."""
        generative = task == "text-generation"
        if generative and needs_prompts and self.prompts is None:
            raise ValueError("data.prompts: task text-generation needs prompts for the teacher to answer, e.g. "
                             "prompts: {source: magpie, count: 256} (the teacher writes its own)")
        for key in ("prompts", "mc"):
            if not generative and getattr(self, key) is not None:
                raise ValueError(f"data.{key} applies only to task text-generation, not {task}")
        if not generative and not self.train:
            raise ValueError("data.train: give at least one source of training samples")
        for key in ("eval", "test"):
            given = getattr(self, key)
            if given is not None and EVAL_KINDS[eval_tag(given)] != task:
                raise ValueError(f"data.{key}: source '{given.source}' scores {EVAL_KINDS[eval_tag(given)]}, but "
                                 f"teacher.task is {task}")
