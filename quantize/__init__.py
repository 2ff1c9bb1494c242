"""LoRA merge, HF -> GGUF conversion, llama.cpp quantization, export parity checks."""
