"""The outer loop: evolution strategies over proxy weights and the compiled generation step."""
