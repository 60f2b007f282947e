"""Quiet model loading: no per-load progress bars or warnings a user cannot act on."""

from __future__ import annotations

import logging
import warnings


def quiet_transformers() -> None:
    """Silence per-load progress bars and bitsandbytes' per-call float16 cast warning."""
    from transformers.utils import logging as hf_logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=r"MatMul8bitLt: inputs will be cast")
    warnings.filterwarnings("ignore", message=r"Failed to load CPU gemm_4bit_forward")
    # Training an adapter (peft) on an int8 GPT-2 checkpoint: it dequantizes into Linear layers where
    # GPT-2 has Conv1D ones, and peft says it transposes, which is right and nothing a user can act on.
    warnings.filterwarnings("ignore", message=r"fan_in_fan_out is set to True but the target module")
    # Deprecation notices from inside peft/transformers about their own APIs: nothing a user can act on.
    warnings.filterwarnings(
        "ignore", message=r".*is_gradient_checkpointing. is deprecated", category=FutureWarning
    )
