/*
 * pos-hwsim reads the same device profiles as the agent, with the same
 * parser. The Makefile links pos-hwsim from the hw/sim sources and libposcommon
 * only (not libagent), so the profile module is compiled in here instead
 * of being copied.
 */
#include "../../terminal/profile.c"
