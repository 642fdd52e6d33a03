#include "ids.h"

#include <string.h>

static bool ids_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool ids_valid_n(const unsigned char *p, size_t n)
{
	if (!p || n < 1 || n > IDS_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ids_char(p[i]))
			return false;
	return true;
}

bool ids_valid(const char *s)
{
	return s && ids_valid_n((const unsigned char *)s, strnlen(s, IDS_MAX + 1));
}
