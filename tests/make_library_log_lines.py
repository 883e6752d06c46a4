"""Write scenarios/library_log_lines.tsv: what the ML libraries really log.

Runs small, offline jobs with the libraries of requirements-ml.txt (a tokenizer
trained and reloaded, tiny models saved and loaded, a few training steps with
transformers' Trainer, Lightning and accelerate, datasets built, saved and
reloaded, argument help texts) and records every log record, warning and the
library objects a training script commonly logs (``log.info("%s", args)``).
Each row is ``source<TAB>line``: the step and the logger (or object) it came
from, then one line of the text. The redaction tests count how many of these
lines the masking changes. Paths of this machine are replaced by neutral ones.

    python tests/make_library_log_lines.py  (needs requirements-ml.txt)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

OUTPUT = Path(__file__).parents[1] / "scenarios" / "library_log_lines.tsv"
WORK = Path(tempfile.mkdtemp(prefix="corpus-"))
os.environ.update(
    HF_HOME=str(WORK / "hf"),
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    WANDB_DISABLED="true",
    TOKENIZERS_PARALLELISM="false",
)

rows: dict[tuple[str, str], None] = {}  # (source, line), in order, once each
step = "start"


def neutral(text: str) -> str:
    for path, name in (
        (str(Path(__file__).resolve()), "/home/ml/project/train.py"),
        (str(WORK), "/home/ml/run"),
        (sys.prefix, "/opt/venv"),
        (sys.base_prefix, "/usr"),
        (str(Path.home()), "/home/ml"),
    ):
        text = text.replace(path, name)
    return text


def add(source: str, text: str) -> None:
    for line in neutral(text).splitlines():
        if line.strip():
            rows[(f"{step}: {source}", line.replace("\t", "    "))] = None


class Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        add(record.name, text)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Collect what the code inside logs, warns and prints, as step ``name``."""
    global step
    step = name
    out = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        yield
    logging.captureWarnings(False)
    add("stdout/stderr", out.getvalue())


def logged(label: str, value: object) -> None:
    """What ``log.info("%s", value)`` writes for a library object."""
    add(f"object {label}", str(value))


def tokenizer_and_models() -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
        PreTrainedTokenizerFast,
        pipeline,
    )

    specials = ["<s>", "</s>", "<unk>", "<pad>", "<mask>", "[CLS]", "[SEP]"]
    texts = [f"the model number {i} learns to read and write" for i in range(200)]
    with stage("tokenizers: train and save a BPE tokenizer"):
        raw = Tokenizer(models.BPE(unk_token="<unk>"))
        raw.pre_tokenizer = pre_tokenizers.Whitespace()
        raw.train_from_iterator(texts, trainers.BpeTrainer(special_tokens=specials))
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=raw,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            mask_token="<mask>",
            cls_token="[CLS]",
            sep_token="[SEP]",
            model_max_length=64,
        )
        tokenizer.save_pretrained(WORK / "tok")
    with stage("transformers: AutoTokenizer.from_pretrained (local)"):
        tokenizer = AutoTokenizer.from_pretrained(WORK / "tok")
        logged("tokenizer", tokenizer)
        logged("special_tokens_map", tokenizer.special_tokens_map)
        add("user", f"Special tokens map: {tokenizer.special_tokens_map}")
        add("user", f"eos_token: {tokenizer.eos_token}")
        logged("encoding", tokenizer("the model learns", return_tensors="pt"))
        tokenizer("word " * 100)  # longer than model_max_length: a warning
        tokenizer.add_special_tokens({"additional_special_tokens": ["<extra>"]})
        tokenizer.save_pretrained(WORK / "tok2")
    size = len(tokenizer)
    with stage("transformers: BERT classifier saved and reloaded"):
        config = BertConfig(
            vocab_size=size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        logged("BertConfig", config)
        BertForSequenceClassification(config).save_pretrained(WORK / "bert")
        tokenizer.save_pretrained(WORK / "bert")
        model = AutoModelForSequenceClassification.from_pretrained(
            WORK / "bert", num_labels=3, ignore_mismatched_sizes=True
        )
        logged("model", model)
    with stage("transformers: GPT-2 saved, reloaded, generating"):
        gpt = GPT2LMHeadModel(
            GPT2Config(vocab_size=size, n_embd=32, n_layer=2, n_head=2, n_positions=64)
        )
        gpt.save_pretrained(WORK / "gpt")
        tokenizer.save_pretrained(WORK / "gpt")
        gpt = AutoModelForCausalLM.from_pretrained(WORK / "gpt")
        logged("generation_config", gpt.generation_config)
        inputs = tokenizer("the model", return_tensors="pt")
        gpt.generate(inputs["input_ids"], max_new_tokens=4)
        gpt.generate(**inputs, max_length=6, do_sample=True, temperature=0.7)
    with stage("transformers: pipeline"):
        classify = pipeline("text-classification", model=WORK / "bert", device="cpu")
        classify(["the model learns", "to read"])
        torch.manual_seed(0)


def trainer() -> None:
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        HfArgumentParser,
        Trainer,
        TrainingArguments,
    )

    with stage("transformers: TrainingArguments help text"):
        add("HfArgumentParser help", HfArgumentParser(TrainingArguments).format_help())
    tokenizer = AutoTokenizer.from_pretrained(WORK / "bert")
    with stage("datasets: build, map, split"):
        data = datasets.Dataset.from_dict(
            {
                "text": [f"sample {i} reads well" for i in range(64)],
                "label": [i % 3 for i in range(64)],
            }
        )
        data = data.map(lambda row: tokenizer(row["text"], truncation=True))
        splits = data.train_test_split(test_size=0.25, seed=0)
        logged("DatasetDict", splits)
        logged("features", splits["train"].features)
    with stage("transformers: Trainer train, evaluate, save"):
        args = TrainingArguments(
            output_dir=str(WORK / "trainer"),
            per_device_train_batch_size=8,
            num_train_epochs=1,
            max_steps=4,
            logging_steps=1,
            eval_strategy="steps",
            eval_steps=2,
            save_steps=4,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            log_level="debug",
        )
        logged("TrainingArguments", args)
        model = AutoModelForSequenceClassification.from_pretrained(
            WORK / "bert", num_labels=3, ignore_mismatched_sizes=True
        )
        run = Trainer(
            model=model,
            args=args,
            train_dataset=splits["train"],
            eval_dataset=splits["test"],
            processing_class=tokenizer,
        )
        logged("train output", run.train())
        logged("metrics", run.evaluate())
        run.save_model(str(WORK / "trainer" / "final"))


def datasets_io() -> None:
    import datasets

    csv = WORK / "data.csv"
    csv.write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(50)))
    with stage("datasets: load_dataset csv, save_to_disk, load_from_disk"):
        data = datasets.load_dataset("csv", data_files=str(csv))
        logged("DatasetDict", data)
        data = datasets.load_dataset("csv", data_files=str(csv))  # from the cache
        data["train"].save_to_disk(WORK / "saved")
        logged("Dataset", datasets.load_from_disk(WORK / "saved"))
        data["train"].to_json(WORK / "data.jsonl")
        data = datasets.load_dataset("json", data_files=str(WORK / "data.jsonl"))
        data["train"].filter(lambda row: row["label"] == 1)
        data["train"].shuffle(seed=1).select(range(5)).to_pandas()


def accelerate_loop() -> None:
    import torch
    from accelerate import Accelerator
    from accelerate.logging import get_logger

    with stage("accelerate: prepare, train, save_state"):
        accelerator = Accelerator(cpu=True, project_dir=str(WORK / "acc"))
        logged("AcceleratorState", accelerator.state)
        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 2)),
            batch_size=8,
        )
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        log = get_logger("train")
        for step, (x, y) in enumerate(loader):
            loss = torch.nn.functional.mse_loss(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            log.info("step %d loss %.4f", step, loss.item(), main_process_only=True)
        accelerator.save_state(str(WORK / "acc" / "state"))
        accelerator.load_state(str(WORK / "acc" / "state"))
        logged("optimizer", optimizer)


def lightning_fit() -> None:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    class Regressor(L.LightningModule):
        def __init__(self, lr: float = 1e-3, hidden: int = 16) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: list[torch.Tensor], _: int) -> None:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("val_loss", loss)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])

    def loader() -> torch.utils.data.DataLoader[tuple[torch.Tensor, ...]]:
        data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
        return torch.utils.data.DataLoader(data, batch_size=16)

    with stage("lightning: Trainer.fit with checkpoints and early stopping"):
        L.seed_everything(42)
        model = Regressor()
        logged("hparams", model.hparams)
        fit = L.Trainer(
            max_epochs=3,
            default_root_dir=str(WORK / "pl"),
            logger=CSVLogger(str(WORK / "pl")),
            callbacks=[
                ModelCheckpoint(monitor="val_loss", save_top_k=2, verbose=True),
                EarlyStopping(monitor="val_loss", patience=1, verbose=True),
            ],
            enable_progress_bar=False,
            accelerator="cpu",
        )
        fit.fit(model, loader(), loader())
        fit.validate(model, loader())
        logged("callback_metrics", fit.callback_metrics)
        logged("module", model)


def torch_messages() -> None:
    import torch

    with stage("torch: warnings and build information"):
        tensor = torch.ones(3)
        torch.tensor(tensor)  # copy-construct warning
        torch.save({"w": tensor}, WORK / "w.pt")
        torch.load(WORK / "w.pt", weights_only=True)
        torch.nn.functional.softmax(torch.ones(2, 2))  # implicit dim warning
        logged("torch config", torch.__config__.show())
        logged("parallel info", torch.__config__.parallel_info())
        torch.utils.data.DataLoader(range(4), num_workers=64)  # too many workers


def command_lines() -> None:
    import subprocess

    binaries = Path(sys.executable).parent
    with stage("command-line help and environment reports"):
        for command in (
            ["hf", "download", "--help"],
            ["hf", "upload", "--help"],
            ["hf", "auth", "login", "--help"],
            ["accelerate", "launch", "--help"],
            ["torchrun", "--help"],
            [sys.executable, "-m", "torch.utils.collect_env"],
        ):
            result = subprocess.run(
                [str(binaries / command[0]), *command[1:]]
                if command[0] != sys.executable
                else command,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"},
            )
            label = " ".join([Path(command[0]).name, *command[1:]])
            add(label, result.stdout + result.stderr)


def main() -> None:
    collect = Collect(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    import transformers

    transformers.utils.logging.set_verbosity_debug()
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    import datasets

    datasets.utils.logging.set_verbosity_debug()
    for job in (
        tokenizer_and_models,
        trainer,
        datasets_io,
        accelerate_loop,
        lightning_fit,
        torch_messages,
        command_lines,
    ):
        job()
    for name in ("lightning", "lightning.pytorch", "datasets"):  # their own handlers
        logging.getLogger(name).handlers.clear()
    skipped = {"urllib3", "filelock", "fsspec", "asyncio", "matplotlib", "PIL"}
    lines = [
        f"{source}\t{line}"
        for source, line in rows
        if source.split(": ")[-1].split(".")[0] not in skipped
    ]
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} lines in {OUTPUT}")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
