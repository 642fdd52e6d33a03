#ifndef POS_CONV_CLI_H
#define POS_CONV_CLI_H
/*
 * The command lines behind the public listener's data (design section 13):
 *
 *   pos-central items import -c CONF < items.csv
 *       gtin,name,vendor,category per line (a header line "gtin,..." is
 *       skipped; fields may be "quoted" with "" for a quote). GTINs are
 *       normalised to GTIN-14 and their check digit verified. All or
 *       nothing: every bad line is named on stderr by its line number and
 *       then nothing is imported (exit 1); a good file replaces the items
 *       it names in one transaction and prints "imported N items".
 *   pos-central staff add -c CONF --name N (--store S | --all)
 *       prints the new staff member's token once (central keeps its
 *       SHA-256 only); --all: every store's conversations.
 *
 * Each leaves one audit row (actor "cli:<login>"). Return: 0 ok, 1
 * failure, 2 usage error (one line on stderr).
 */

int items_main(int argc, char **argv);
int staff_main(int argc, char **argv);

#endif
