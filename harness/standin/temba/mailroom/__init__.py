"""What Django hands to mailroom: tasks pushed straight into mailroom's Redis queues."""
