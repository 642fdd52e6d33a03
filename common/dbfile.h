#ifndef POS_DBFILE_H
#define POS_DBFILE_H
/*
 * Making a SQLite database file private (0600) without ever closing a
 * descriptor on a database that this process may already have open.
 *
 * POSIX record locks belong to the process and the file, not to the
 * descriptor: closing any descriptor of a database file drops every lock
 * that the process's SQLite connections hold on it. Another process then
 * believes it is the last connection, checkpoints and unlinks the -wal and
 * -shm files, and every commit made afterwards goes to a deleted file
 * (SQLite's "How To Corrupt An SQLite Database File", section 2.2).
 *
 * So the file is created only when it does not exist yet (O_EXCL: the new
 * inode is nobody's), and an existing file is narrowed through an O_PATH
 * descriptor, which opens nothing and whose close drops no lock. SQLite gives the -wal and -shm files the database file's
 * mode, so all three are 0600.
 */
#include "err.h"

/* Ensures path is a regular file with mode 0600, creating it empty when it
 * is missing. Never opens an existing file. Safe from several threads. */
int dbfile_prepare(const char *path, pos_err *e);

#endif
