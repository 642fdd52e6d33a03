#ifndef POS_OFFER_CLI_H
#define POS_OFFER_CLI_H
/*
 * Marketing's and analysts' command line for offers:
 *
 *   pos-central offer create -c CONF --title T --reward TEXT [--from D] [--to D]
 *                            [--target all|gtin:GTIN14]     prints the offer id
 *   pos-central offer list   -c CONF                        one offer per line
 *   pos-central offer end    -c CONF ID                     ends it now
 *   pos-central offer report -c CONF [--format csv|json]    redemptions per
 *                                                           offer, store, day
 *
 * D is a date YYYY-MM-DD (UTC) or an RFC 3339 time; a --to date includes
 * that whole day. Every action leaves one audit row (actor "cli:<login>").
 * argv[0] is "offer". Return: 0 ok, 1 failure, 2 usage error (one line on
 * stderr).
 */

int offer_main(int argc, char **argv);

#endif
