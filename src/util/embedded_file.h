/* embedded_file.h — files built into the binary (scripts/embed-files.sh
 * makes the tables, the Makefile says which files). */
#ifndef USHER_UTIL_EMBEDDED_FILE_H
#define USHER_UTIL_EMBEDDED_FILE_H

#include <stddef.h>

struct embedded_file {
    const char *name;                /* the file's base name; NULL ends a table */
    const unsigned char *data;
    size_t len;                      /* bytes */
};

#endif
