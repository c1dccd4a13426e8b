"""The notification family: `notify.webhook`, `notify.slack` and `notify.pagerduty`."""
