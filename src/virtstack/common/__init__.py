"""What two layers truly share: atomic file writes, logging set-up."""
