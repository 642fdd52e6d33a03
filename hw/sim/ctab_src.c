/*
 * The profile parser's key tables (terminal/ctab.c), compiled in here for
 * the same reason as profile_src.c: pos-hwsim links libposcommon only.
 */
#include "../../terminal/ctab.c"
