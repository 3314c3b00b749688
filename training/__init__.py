"""skillmix.training"""
