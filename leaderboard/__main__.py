import sys

from skillmix.leaderboard.cli import main

sys.exit(main())
