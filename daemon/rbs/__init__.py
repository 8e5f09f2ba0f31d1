"""RBS: the remote-backup-service TCP channel and remote-backup-profile sync (IGMP entries).

`codec` and `machine` are pure (no I/O, time passed in as `now`); `service` binds a channel to
TCP under trio; `display` renders `display remote-backup-service` and
`display remote-backup-profile`. The wire format is in docs/protocol.md.
"""
