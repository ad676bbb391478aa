/* pvd.h: placeholder, replaced by the shim's C API. */
#ifndef PVD_H
#define PVD_H
#include <stdint.h>
typedef uint32_t pvd_handle_t;
#define PVD_HANDLE_UNSPEC ((pvd_handle_t)0)
#define PVD_HANDLE_NULL ((pvd_handle_t)0xFFFFFFFFu)
#endif
