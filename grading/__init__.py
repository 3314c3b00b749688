"""skillmix.grading"""
