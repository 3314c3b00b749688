"""The paper's recipe as one resumable pipeline (``skillmix-pipeline``) and the offline quickstart."""
