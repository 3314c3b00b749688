"""The SKILL-MIX lm-eval task folder: the YAMLs and their hooks (utils.py). The import hook adds it to TaskManager."""
