"""lm-eval task YAMLs for SKILL-MIX (the folder the lm-eval import hook adds to TaskManager)."""
