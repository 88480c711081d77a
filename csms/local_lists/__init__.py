"""Local authorization lists: per-station versioned lists kept in step with the id-tag registry."""
