"""What compliance writes: the policy and hold language, its loading and validation."""
