// Debian's PCRE2 (libpcre2-dev), 8-bit code units: the library keepalived 2.2.7 matches its
// HTTP_GET/SSL_GET `regex` with, so a pattern means the same to both.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

// Macros Swift cannot import.
static inline uint32_t vigil_pcre2_partial_hard(void) { return PCRE2_PARTIAL_HARD; }
static inline int vigil_pcre2_error_partial(void) { return PCRE2_ERROR_PARTIAL; }
static inline int vigil_pcre2_error_nomatch(void) { return PCRE2_ERROR_NOMATCH; }
static inline uint32_t vigil_pcre2_info_maxlookbehind(void) { return PCRE2_INFO_MAXLOOKBEHIND; }
