"""Two-stage QLoRA fine-tuning on transformers + peft + bitsandbytes."""
