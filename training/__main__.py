"""``skillmix-train`` / ``accelerate launch -m skillmix.training``: fine-tune a chat model on SKILL-MIX data.

Examples::

    skillmix-train --config training/configs/paper.yaml model=/ckpt/mistral-7b-instruct \\
        data=[data/d_skillmix_k1.jsonl,data/d_skillmix_k2.jsonl,data/d_skillmix_k3.jsonl]
    accelerate launch --config_file training/accelerate/fsdp.yaml -m skillmix.training \\
        --config training/configs/paper.yaml model=... output_dir=runs/mistral-d123
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from .config import ConfigError, LoraSection, TrainConfig
from .data import DataError, TemplateError


def parser() -> argparse.ArgumentParser:
    def default(f):
        return f.default if f.default is not dataclasses.MISSING else f.default_factory()

    fields = "\n".join(f"  {f.name} (default {default(f)})" for f in dataclasses.fields(TrainConfig))
    lora = ", ".join(f"lora.{f.name} (default {default(f)})" for f in dataclasses.fields(LoraSection))
    p = argparse.ArgumentParser(
        prog="skillmix-train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__, epilog="fields (set in the YAML or as key=value overrides; YAML syntax for "
                                    "values, e.g. data=[a.jsonl,b.jsonl] bf16=true lora=true lora.r=8):\n"
                                    + fields + "\n  LoRA (off unless lora is set): " + lora)
    p.add_argument("--config", help="YAML file of fields (e.g. training/configs/paper.yaml)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config fields")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = TrainConfig.from_sources(args.config, args.overrides)
        if args.print_config:
            from accelerate import PartialState

            print(config.validate(PartialState().num_processes).dumps())
            return 0
        from .loop import train

        result = train(config)
    except ConfigError as e:
        print(f"skillmix-train: config error: {e}", file=sys.stderr)
        return 2
    except (DataError, TemplateError) as e:
        print(f"skillmix-train: data error: {e}", file=sys.stderr)
        return 2
    summary = {k: result[k] for k in ("start_step", "step", "checkpoint", "stopped_by_signal")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
