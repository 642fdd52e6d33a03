#ifndef POS_ADMIN_H
#define POS_ADMIN_H
/*
 * Admin command lines of pos-central (design section 5):
 *   pos-central household enroll -c CONF          < household_ref,tid lines
 *   pos-central household show   -c CONF --hhid H
 *   pos-central household merge  -c CONF --from H1 --into H2
 *   pos-central household unlink -c CONF          < one TID per line
 *   pos-central history -c CONF --hhid H [--from D] [--to D] [--format csv|json|table]
 *   pos-central backup  -c CONF --out FILE
 * TIDs are read on stdin only (argv is visible in ps) and never printed.
 * argv[0] is the subcommand ("household" / "history").
 * Return: 0 ok, 1 failure (any bad input line included), 2 usage error.
 */

int household_main(int argc, char **argv);
int history_main(int argc, char **argv);
int backup_main(int argc, char **argv);

#endif
