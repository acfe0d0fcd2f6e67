#pragma once

/// Registers "onekey-walbuf" as SQLite's default VFS (once; later calls do nothing). It is the
/// platform's default VFS except for write-ahead logs: a transaction's frames are gathered in
/// memory and reach the file in one write when its commit frame is complete (before SQLite syncs
/// or returns from the commit), instead of two writes per page. Returns an SQLite result code.
int onekey_walbuffer_register(void);

/// How many WAL writes were gathered and how many writes reached the file (for tests).
void onekey_walbuffer_counts(long long *gathered, long long *flushed);
