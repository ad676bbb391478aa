/* Starts the ASan runtime of the ASan/UBSan build of the shim (`make test-asan`)
 * before any library's constructor runs.
 *
 * That build carries the runtime itself and is preloaded, so its malloc is the
 * process's malloc from the first call; but without this, the runtime would
 * start lazily inside the first malloc, which can come from another library's
 * constructor: p11-kit's (loaded by curl and wget) calls newlocale(), and
 * starting ASan there (it calls dlerror(), which takes the locale lock) leaves
 * glibc's locale lock corrupted, and the program hangs in its own setlocale().
 *
 * This tiny library is a dependency of that build, linked with -z initfirst:
 * the dynamic loader runs its constructor before every other one.  It does
 * nothing else; the shim's own constructors keep their normal place.
 */
void __asan_init(void);

__attribute__((constructor)) static void pvdrun_asan_start(void)
{
	__asan_init();
}
