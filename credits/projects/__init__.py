"""Projects, claims (秒抢) with a waitlist, no-shows and suspension."""
