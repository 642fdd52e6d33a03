#ifndef POS_VENDOR_CLI_H
#define POS_VENDOR_CLI_H
/*
 * The command lines of vendors (design section 14, docs/vendors.md):
 *
 *   pos-central vendor add -c CONF --id V --name N --backend URL
 *       prints "token <T>" and "secret <S>", once: central keeps the
 *       token's SHA-256 and the secret (it signs and verifies with it);
 *       makes [vendors] k_vendor (0600) when it is missing.
 *   pos-central vendor report -c CONF --event ID
 *       "reached N", "read N", "acted N": households the event's messages
 *       reached, that read them, that picked an option or asked a person.
 *   pos-central items relate -c CONF GTIN_A GTIN_B --kind requires|accessory
 *       A requires B (an installation of A needs B delivered first), or A
 *       is an accessory of B.
 *   pos-central items related -c CONF GTIN [--min-baskets N] [--min-lift-pct P]
 *       what is bought with GTIN, learned from the baskets: "GTIN<TAB>
 *       baskets<TAB>lift<TAB>name" per line, best lift first; the
 *       thresholds default to [relations] min_baskets and min_lift_pct.
 *
 * Writes leave one audit row (actor "cli:<login>"). Return: 0 ok, 1
 * failure, 2 usage error (one line on stderr).
 */

int vendor_main(int argc, char **argv);
/* argv[0] "items", argv[1] "relate". */
int vendor_items_relate(int argc, char **argv);
/* argv[0] "items", argv[1] "related". */
int vendor_items_related(int argc, char **argv);

#endif
