/* core.c: placeholder so that the build works; replaced by the shim. */
#include "pvd.h"
__attribute__((visibility("default"))) pvd_handle_t pvd_handle_unspec(void) { return PVD_HANDLE_UNSPEC; }
