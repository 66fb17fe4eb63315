/*
 * corpus_replay.c — runs files through the fuzz target without libFuzzer.
 *
 *   fuzz_records_replay PATH...    (files, or directories of files)
 *
 * Each file is copied into a heap buffer of exactly its size and handed to
 * LLVMFuzzerTestOneInput (fuzz_records.c), which aborts on a violated
 * property. Built with the normal compiler and registered with ctest over
 * tests/fuzz/corpus/, so every seed and every input that once crashed the
 * fuzzer is re-checked on each test run (under ASan in build-asan).
 * Exit status: 0 when at least one file ran and none failed, 1 otherwise.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > (1 << 20)) {
        fprintf(stderr, "%s: unreadable or larger than 1 MiB\n", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL || fread(buf, 1, size, f) != size) {
        fprintf(stderr, "%s: read failed\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            errors += run_file(argv[i]) != 0;
            files++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            errors += run_file(path) != 0;
            files++;
        }
        closedir(d);
    }
    printf("fuzz_records_replay: %u files, %u unreadable\n", files, errors);
    return files > 0 && errors == 0 ? 0 : 1;
}
