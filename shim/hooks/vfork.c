/* vfork.c: vfork() hook.
 *
 * A vfork() child shares the parent's memory (so the shim's descriptor table) but has its
 * own descriptor table: a dup2() or close() it makes before exec must not rewrite what the
 * parent's table says of the parent's descriptors.  The hook marks the calling thread as "in
 * a vfork child" in the child and clears the mark in the parent when it resumes; while
 * marked, the hooks neither read nor write the table (core.h, fd_load/fd_store): every
 * operation of the child decides afresh from the kernel's view, and fails closed as any
 * untracked descriptor does.
 *
 * vfork cannot be wrapped in C (the child returns through the wrapper's frame, which the
 * parent then returns through again), so it is a few instructions of assembly that keep
 * the return address in a register across the system call, as libc's own vfork does.  On
 * architectures without this code, vfork is not interposed (docs/shim.md). */
#include <errno.h>

#include "core.h"

__attribute__((used, visibility("hidden"))) void shim_vfork_child(void) { shim_in_vfork_child = 1; }
__attribute__((used, visibility("hidden"))) void shim_vfork_parent(void) { shim_in_vfork_child = 0; }
__attribute__((used, visibility("hidden"))) int shim_vfork_error(int e)
{
    errno = e;
    return -1;
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork,@function\n"
        ".globl __vfork\n"
        ".type __vfork,@function\n"
        "vfork:\n"
        "__vfork:\n"
        "    popq %rdi\n"            /* the return address: the child will reuse the stack */
        "    movl $58, %eax\n"       /* SYS_vfork */
        "    syscall\n"
        "    pushq %rdi\n"
        "    cmpq $-4095, %rax\n"
        "    jae 3f\n"
        "    testl %eax, %eax\n"
        "    jnz 2f\n"
        "    subq $8, %rsp\n"        /* child: mark the thread, return 0 */
        "    call shim_vfork_child\n"
        "    addq $8, %rsp\n"
        "    xorl %eax, %eax\n"
        "    ret\n"
        "2:\n"
        "    pushq %rax\n"           /* parent: clear the mark, return the child's pid */
        "    call shim_vfork_parent\n"
        "    popq %rax\n"
        "    ret\n"
        "3:\n"
        "    negl %eax\n"
        "    movl %eax, %edi\n"
        "    subq $8, %rsp\n"
        "    call shim_vfork_error\n"
        "    addq $8, %rsp\n"
        "    ret\n"
        ".size vfork, .-vfork\n"
        ".size __vfork, .-__vfork\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork,%function\n"
        ".globl __vfork\n"
        ".type __vfork,%function\n"
        "vfork:\n"
        "__vfork:\n"
        "    mov x0, #0x4111\n"      /* CLONE_VM | CLONE_VFORK | SIGCHLD */
        "    mov x1, #0\n"
        "    mov x2, #0\n"
        "    mov x3, #0\n"
        "    mov x4, #0\n"
        "    mov x8, #220\n"         /* SYS_clone */
        "    svc #0\n"
        "    cmn x0, #4095\n"
        "    b.hs 3f\n"
        "    cbnz x0, 2f\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    bl shim_vfork_child\n"
        "    ldp x29, x30, [sp], #16\n"
        "    mov x0, #0\n"
        "    ret\n"
        "2:\n"
        "    stp x0, x30, [sp, #-16]!\n"
        "    bl shim_vfork_parent\n"
        "    ldp x0, x30, [sp], #16\n"
        "    ret\n"
        "3:\n"
        "    neg w0, w0\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    bl shim_vfork_error\n"
        "    ldp x29, x30, [sp], #16\n"
        "    ret\n"
        ".size vfork, .-vfork\n"
        ".size __vfork, .-__vfork\n");
#endif
