"""RQ job functions and the cron schedule. Jobs are thin: open an app context, call a service."""
