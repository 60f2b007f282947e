"""Fine-tuning: packing, the training loop, LoRA, sweeps, export."""
