#ifndef POS_DBCLI_H
#define POS_DBCLI_H
/*
 * The store's own maintenance commands (design section 11):
 *
 *   pos-central retention -c CONF --keep-months N
 *       removes the baskets (with items, receipts, redemptions) of months
 *       before the N last ones: whole partitions on PostgreSQL, batches of
 *       [store] retention_batch on SQLite; writes an audit row.
 *   pos-central store-copy -c CONF --to DSN
 *       copies the SQLite store of CONF, from one read snapshot while
 *       serve runs, into an empty PostgreSQL database, then verifies the
 *       row counts and a sample of households' histories.
 *
 * Each returns an exit status (CLI_OK, CLI_FAIL, CLI_USAGE).
 */

int retention_main(int argc, char **argv);
int store_copy_main(int argc, char **argv);

#endif
