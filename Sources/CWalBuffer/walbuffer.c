// A write-gathering VFS for SQLite's write-ahead log.
//
// SQLite writes each WAL frame as two writes (the 24-byte frame header, then the page): a press's
// commit of ten pages was twenty pwrite calls, ~75 us on the gateway's VM before the fdatasync —
// more than the rest of the commit. This shim keeps the platform VFS for everything and, for WAL
// files only, appends contiguous writes to a 64 KiB buffer that goes to the file in one write:
//   - when a transaction's commit frame (a frame header with a non-zero "database size") and
//     the page after it are in the buffer: every transaction reaches the OS before SQLite's
//     commit returns, whether or not it syncs (synchronous = NORMAL keeps its meaning: a
//     committed transaction survives the process being killed);
//   - before any read, sync, truncate, size query, file control or close of the file;
//   - when a write is not contiguous with the buffer or does not fit.
// A failed flush returns the platform VFS's error for the write that triggered it and drops the
// buffer: SQLite treats the commit as failed and rewrites those frames (the WAL's salts and
// checksums make any partial frames on disk invisible).
#include "walbuffer.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum { BUFFER_BYTES = 64 * 1024, FRAME_HEADER_BYTES = 24 };

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;        // the platform VFS's file, allocated right after this struct
    unsigned char *buf;        // non-NULL only for a WAL file
    int len;
    sqlite3_int64 off;         // file offset of buf[0]
    sqlite3_int64 commitPage;  // offset of the page that completes a commit frame, or -1
} File;

static sqlite3_vfs walbuf;
static sqlite3_vfs *platform;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;
static long long gatheredWrites, flushedWrites;  // statistics only (racy by design)

#define REAL(f) (((File *)(f))->real)

static int flush(File *p) {
    if (p->len == 0) return SQLITE_OK;
    int rc = p->real->pMethods->xWrite(p->real, p->buf, p->len, p->off);
    p->len = 0;
    p->commitPage = -1;
    flushedWrites++;
    return rc;
}

static int xClose(sqlite3_file *f) {
    File *p = (File *)f;
    int rc = flush(p);
    int rc2 = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    free(p->buf);
    p->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int xRead(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
    int rc = flush((File *)f);
    if (rc != SQLITE_OK) return rc;
    return REAL(f)->pMethods->xRead(REAL(f), out, amount, offset);
}

static int xWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    File *p = (File *)f;
    if (!p->buf) return p->real->pMethods->xWrite(p->real, data, amount, offset);
    if (p->len > 0 && (offset != p->off + p->len || p->len + amount > BUFFER_BYTES)) {
        int rc = flush(p);
        if (rc != SQLITE_OK) return rc;
    }
    if (amount > BUFFER_BYTES) return p->real->pMethods->xWrite(p->real, data, amount, offset);
    if (p->len == 0) p->off = offset;
    memcpy(p->buf + p->len, data, (size_t)amount);
    p->len += amount;
    gatheredWrites++;
    if (amount == FRAME_HEADER_BYTES && offset >= 32) {
        const unsigned char *h = data;
        // Bytes 4..7 of a frame header: the database size after a commit, 0 for other frames.
        if (h[4] | h[5] | h[6] | h[7]) p->commitPage = offset + FRAME_HEADER_BYTES;
    } else if (offset == p->commitPage) {
        return flush(p);
    }
    return SQLITE_OK;
}

static int xTruncate(sqlite3_file *f, sqlite3_int64 size) {
    int rc = flush((File *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int xSync(sqlite3_file *f, int flags) {
    int rc = flush((File *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int xFileSize(sqlite3_file *f, sqlite3_int64 *size) {
    int rc = flush((File *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int xFileControl(sqlite3_file *f, int op, void *arg) {
    int rc = flush((File *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int xLock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xLock(REAL(f), level); }
static int xUnlock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xUnlock(REAL(f), level); }
static int xCheckReservedLock(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int xSectorSize(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int xDeviceCharacteristics(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int xShmMap(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
    return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, out);
}
static int xShmLock(sqlite3_file *f, int offset, int n, int flags) { return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags); }
static void xShmBarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int xShmUnmap(sqlite3_file *f, int deleteFlag) { return REAL(f)->pMethods->xShmUnmap(REAL(f), deleteFlag); }
static int xFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    int rc = flush((File *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFetch(REAL(f), offset, amount, out);
}
static int xUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *page) { return REAL(f)->pMethods->xUnfetch(REAL(f), offset, page); }

static sqlite3_io_methods methods = {
    3, xClose, xRead, xWrite, xTruncate, xSync, xFileSize, xLock, xUnlock, xCheckReservedLock,
    xFileControl, xSectorSize, xDeviceCharacteristics, xShmMap, xShmLock, xShmBarrier, xShmUnmap,
    xFetch, xUnfetch,
};

static int xOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    File *p = (File *)f;
    memset(p, 0, sizeof *p);
    p->real = (sqlite3_file *)&p[1];
    p->commitPage = -1;
    int rc = platform->xOpen(platform, name, p->real, flags, outFlags);
    // SQLite calls xClose whenever pMethods is set, even after a failed open.
    p->base.pMethods = p->real->pMethods ? &methods : NULL;
    if (rc != SQLITE_OK || !p->real->pMethods) return rc;
    // The platform file's method table must be the version ours forwards to.
    if (p->real->pMethods->iVersion < 3) {
        p->real->pMethods->xClose(p->real);
        p->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    if (flags & SQLITE_OPEN_WAL) p->buf = malloc(BUFFER_BYTES);  // NULL: unbuffered, still correct
    return SQLITE_OK;
}

static void setUp(void) {
    platform = sqlite3_vfs_find(NULL);
    if (!platform) return;
    walbuf = *platform;  // the platform's functions keep their pAppData
    walbuf.pNext = NULL;
    walbuf.zName = "onekey-walbuf";
    walbuf.szOsFile = (int)sizeof(File) + platform->szOsFile;
    walbuf.xOpen = xOpen;
    registered = sqlite3_vfs_register(&walbuf, 1);
}

int onekey_walbuffer_register(void) {
    pthread_once(&once, setUp);
    return registered;
}

void onekey_walbuffer_counts(long long *gathered, long long *flushed) {
    *gathered = gatheredWrites;
    *flushed = flushedWrites;
}
