/*
 * procmem.h — memory figures from /proc: a process's resident memory
 * (/proc/<pid>/statm) and the system's memory pressure (/proc/pressure/memory
 * or a cgroup's memory.pressure, Linux PSI). The parse functions take text so
 * tests can feed them anything; the read functions open the files. Nothing
 * here keeps state.
 */
#ifndef SHMBUS_CTL_PROCMEM_H
#define SHMBUS_CTL_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct procmem_rss {
    uint64_t resident_bytes; /* statm field 2 */
    uint64_t shared_bytes;   /* statm field 3: file-backed and shared-memory pages (the ring) */
    uint64_t private_bytes;  /* resident - shared: what the process itself allocated */
} procmem_rss;

/* Parses the text of /proc/<pid>/statm. Returns 0 or -EINVAL. */
int procmem_parse_statm(const char *text, size_t page_size, procmem_rss *out);

/* Reads /proc/<pid>/statm. Returns 0, -ENOENT (process gone) or -EINVAL. */
int procmem_read_rss(pid_t pid, procmem_rss *out);

/* Parses the text of /proc/pressure/memory: the "some avg10" percentage as a
 * ratio 0..1 (share of the last 10 s in which some task waited for memory).
 * Returns 0 or -EINVAL. */
int procmem_parse_psi(const char *text, double *some_avg10);

#define PROCMEM_PSI_DEFAULT "/proc/pressure/memory"

/* Reads a PSI memory file: /proc/pressure/memory, or a cgroup's
 * memory.pressure (same format). Returns 0, -ENOENT (no such file: a kernel
 * without PSI), -EACCES, or -EINVAL (the text does not parse). */
int procmem_read_psi(const char *path, double *some_avg10);

#endif
