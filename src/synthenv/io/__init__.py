"""Files: model files (safetensors + JSON metadata) and run directories (atomic writes, resume)."""
