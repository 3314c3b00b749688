"""skillmix.leaderboard"""
