/* Default sanitizer options of the ASan/UBSan build of the shim (`make test-asan`).
 *
 * That build is preloaded into uninstrumented programs, and many tests run them
 * with a scrubbed environment (`env -i`), where ASAN_OPTIONS and UBSAN_OPTIONS
 * would be lost.  These defaults travel with the library instead; an
 * ASAN_OPTIONS or UBSAN_OPTIONS in the environment still overrides them one
 * option at a time.  Reports go to files under PVDRUN_SANITIZER_LOG_DIR
 * (asan.PID, ubsan.PID), which `make test-asan` scans after the run: a program
 * that swallows its stderr cannot hide a report.
 *
 * Compiled only into that build, never into the installed library.
 */
#ifndef PVDRUN_SANITIZER_LOG_DIR
#error "define PVDRUN_SANITIZER_LOG_DIR (a quoted absolute directory)"
#endif

#define PVDRUN_EXPORT __attribute__((visibility("default"), used))

/* Not a program's own runtime: the link-order check and leak detection (the
 * program's leaks, not ours) would only add noise; abort so that a test sees
 * a signal, not an ordinary exit status.
 *
 * symbolize=0: ASan starts before libc is initialised (asan_start.c), and its
 * symbolizer would set itself up there with mmap(), one of the shim's hooks:
 * the shim would then initialise at that moment, before `environ` exists,
 * every time, instead of in its constructor as in the normal build.  Reports
 * give module+offset frames, which tests/asan/scan_logs.py turns into
 * file:line with addr2line. */
PVDRUN_EXPORT const char *__asan_default_options(void)
{
	return "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1:symbolize=0:"
	       "log_path=" PVDRUN_SANITIZER_LOG_DIR "/asan";
}

/* UBSan's handlers share ASan's runtime in that build; they read these when
 * they start, at the first report, which ends the program. */
PVDRUN_EXPORT const char *__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1:abort_on_error=1:"
	       "log_path=" PVDRUN_SANITIZER_LOG_DIR "/ubsan";
}
