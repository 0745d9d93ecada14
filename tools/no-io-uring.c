/*
 * no-io-uring: runs a program with io_uring blocked, as Docker's default seccomp profile
 * blocks it: io_uring_setup, io_uring_enter and io_uring_register fail with ENOSYS, every
 * other system call is allowed. The integration tests start starlingd through it to show that
 * event_backend auto falls back to epoll and that event_backend io_uring refuses to start.
 *
 *   no-io-uring [--eperm] PROGRAM [ARG...]
 *
 * --eperm: they fail with EPERM instead, as with kernel.io_uring_disabled=2 (the tests pair
 * it with that sysctl's file replaced in a mount namespace of their own, never the real one).
 *
 * The filter is four BPF instructions written by hand rather than built with libseccomp: one
 * architecture check and one syscall range, with nothing to link and no package to install.
 * On an architecture it does not know it exits 77 (the tests skip).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NIU_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NIU_ARCH AUDIT_ARCH_AARCH64
#endif

/* io_uring_setup, io_uring_enter and io_uring_register are numbered one after the other. */
#define NIU_FIRST __NR_io_uring_setup
#define NIU_LAST  __NR_io_uring_register

int main(int argc, char **argv)
{
#ifdef NIU_ARCH
	int eperm = argc > 1 && strcmp(argv[1], "--eperm") == 0;
	unsigned err = eperm ? EPERM : ENOSYS;
	struct sock_filter filter[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	        /* Another architecture's calls (a 32-bit one) pass: their numbers differ. */
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NIU_ARCH, 0, 4),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, NIU_FIRST, 0, 2),
	        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, NIU_LAST, 1, 0),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	argc -= eperm;
	argv += eperm;
	if (argc < 2) {
		fprintf(stderr, "usage: no-io-uring [--eperm] PROGRAM [ARG...]\n");
		return 2;
	}
	/* Lets an unprivileged process install the filter; it survives execve. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		fprintf(stderr, "no-io-uring: seccomp: %s\n", strerror(errno));
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-io-uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "no-io-uring: unknown architecture\n");
	return 77;
#endif
}
